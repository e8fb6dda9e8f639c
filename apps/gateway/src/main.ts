import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';
import { exposeMetrics } from './metrics.js';

async function bootstrap(): Promise<void> {
  if (process.env.METRICS_PORT) console.log(`gateway metrics on ${await exposeMetrics(Number(process.env.METRICS_PORT))}`);
  const app = await NestFactory.create(AppModule, { logger: ['log', 'warn', 'error'] });
  app.enableShutdownHooks();
  await app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
  // Lets scripts that start the gateway on port 0 find it.
  console.log(`gateway listening on ${await app.getUrl()}`);
}

void bootstrap();
