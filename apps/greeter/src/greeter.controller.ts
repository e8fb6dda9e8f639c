import { Controller, Get } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { EtcdRegistration } from 'nestjs-etcd-discovery';
import { Observable } from 'rxjs';

interface HelloRequest {
  name: string;
  delayMs?: number;
}

interface StreamRequest {
  name: string;
  count?: number;
}

interface HelloReply {
  message: string;
  instanceId: string;
  address: string;
}

@Controller()
export class GreeterController {
  constructor(private readonly registration: EtcdRegistration) {}

  @GrpcMethod('Greeter', 'SayHello')
  async sayHello({ name, delayMs }: HelloRequest): Promise<HelloReply> {
    if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
    return this.reply(name);
  }

  @GrpcMethod('Greeter', 'StreamHellos')
  streamHellos({ name, count }: StreamRequest): Observable<HelloReply> {
    return new Observable((subscriber) => {
      for (let index = 0; index < Math.min(count ?? 3, 100); index++) subscriber.next(this.reply(`${name} #${index + 1}`));
      subscriber.complete();
    });
  }

  /** Served over HTTP when the app runs hybrid (HTTP_PORT set). */
  @Get('registration')
  registrationState(): { instanceId: string; registered: boolean; keys: string[] } {
    return {
      instanceId: this.registration.instanceId,
      registered: this.registration.isRegistered,
      keys: this.registration.instances.map((instance) => instance.key),
    };
  }

  private reply(name: string): HelloReply {
    const instance = this.registration.instances[0];
    return {
      message: `Hello, ${name}!`,
      instanceId: this.registration.instanceId,
      address: instance ? (JSON.parse(instance.value) as { Addr: string }).Addr : 'unregistered',
    };
  }
}
