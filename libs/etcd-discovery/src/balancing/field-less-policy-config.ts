import type { experimental } from '@grpc/grpc-js';

/** The config class of a policy that takes no fields: `{ "<name>": {} }` in service config. */
export function fieldLessPolicyConfig(name: string) {
  return class implements experimental.TypedLoadBalancingConfig {
    getLoadBalancerName(): string {
      return name;
    }

    toJsonObject(): object {
      return { [name]: {} };
    }

    static createFromJson(json: unknown): experimental.TypedLoadBalancingConfig {
      if (json !== undefined && (typeof json !== 'object' || json === null || Object.keys(json).length > 0)) {
        throw new Error(`${name} config takes no fields, got ${JSON.stringify(json)}`);
      }
      return new this();
    }
  };
}
