import { BadRequestException, Controller, Get, HttpException, HttpStatus, Query, type OnModuleInit } from '@nestjs/common';
import type { ClientGrpc } from '@nestjs/microservices';
import {
  ClientFactory,
  InjectDiscoveredClient,
  InvalidDiscoveryOptionsError,
  type LoadBalancingPolicy,
  type ServiceInstance,
} from 'nestjs-etcd-discovery';
import { catchError, firstValueFrom, lastValueFrom, toArray } from 'rxjs';
import { GREETER_CLIENT_OPTIONS, type GreeterService, type HelloReply } from './greeter-client.options.js';

const MAX_BURST = 10_000;
/** Each (policy, zone) pair is a channel kept until shutdown: request input must not mint them without bound. */
const MAX_VARIANTS = 8;

@Controller()
export class GatewayController implements OnModuleInit {
  private greeter!: GreeterService;
  private readonly variants = new Map<string, GreeterService>();

  constructor(
    @InjectDiscoveredClient('greeter') private readonly client: ClientGrpc,
    private readonly clients: ClientFactory,
  ) {}

  onModuleInit(): void {
    this.greeter = this.client.getService<GreeterService>('Greeter');
  }

  @Get('hello')
  hello(@Query('name') name = 'world'): Promise<HelloReply> {
    return firstValueFrom(this.greeter.sayHello({ name }).pipe(catchError(rethrowAsHttp)));
  }

  @Get('stream')
  stream(@Query('name') name = 'world', @Query('count') count = '3'): Promise<HelloReply[]> {
    return lastValueFrom(this.greeter.streamHellos({ name, count: Number(count) }).pipe(toArray(), catchError(rethrowAsHttp)));
  }

  /**
   * Makes `n` calls, `concurrency` at a time, and counts which instance served each. `policy` and
   * `zone` pick another balanced client (cached by ClientFactory) to show policies and zone routing.
   */
  @Get('burst')
  async burst(
    @Query('n') n = '300',
    @Query('concurrency') concurrency = '16',
    @Query('policy') policy?: LoadBalancingPolicy,
    @Query('zone') zone?: string,
  ): Promise<{ calls: number; failed: number; byInstance: Record<string, number> }> {
    const greeter = policy || zone ? this.greeterWith(policy, zone) : this.greeter;
    const total = Math.min(Math.max(Number(n) || 0, 0), MAX_BURST);
    const byInstance: Record<string, number> = {};
    let next = 0;
    let failed = 0;
    const worker = async (): Promise<void> => {
      while (next < total) {
        next += 1;
        try {
          const reply = await firstValueFrom(greeter.sayHello({ name: 'burst' }));
          byInstance[reply.address] = (byInstance[reply.address] ?? 0) + 1;
        } catch {
          failed += 1;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(Number(concurrency) || 1, 256)) }, worker));
    return { calls: total, failed, byInstance };
  }

  private greeterWith(policy: LoadBalancingPolicy | undefined, zone: string | undefined): GreeterService {
    const variant = `${policy ?? ''}/${zone ?? ''}`;
    const known = this.variants.get(variant);
    if (known) return known;
    if (this.variants.size >= MAX_VARIANTS) throw new BadRequestException(`at most ${MAX_VARIANTS} policy/zone variants`);
    try {
      const options = { ...GREETER_CLIENT_OPTIONS, loadBalancing: policy ?? GREETER_CLIENT_OPTIONS.loadBalancing, select: zone ? { preferredZone: zone } : undefined };
      const greeter = this.clients.createClient('greeter', options).getService<GreeterService>('Greeter');
      this.variants.set(variant, greeter);
      return greeter;
    } catch (error) {
      if (error instanceof InvalidDiscoveryOptionsError) throw new BadRequestException(error.message);
      throw error;
    }
  }

  @Get('instances')
  instances(): Promise<readonly ServiceInstance[]> {
    return firstValueFrom(this.clients.instances('greeter'));
  }
}

function rethrowAsHttp(error: { code?: number; details?: string; message?: string }): never {
  throw new HttpException({ grpcCode: error.code, message: error.details ?? error.message }, HttpStatus.BAD_GATEWAY);
}
