import { beforeAll, describe, expect, it } from 'vitest';
import { setupBalancing } from '../balancing/index.js';
import type { DiscoveredClientOptions } from './discovered-client-options.interface.js';
import { InvalidDiscoveryOptionsError } from '../options/invalid-options.error.js';
import { validateClientOptions } from './validate-client-options.js';
import { invalid } from '../../../../test/support/invalid-options.js';

// ClientFactory registers our policies before it validates; these tests call validation directly.
beforeAll(() => setupBalancing());


/** Bypasses the option types so tests can hand in what a JavaScript caller could. */
describe('validateClientOptions', () => {
  const base: DiscoveredClientOptions = { package: 'greeter', protoPath: 'greeter.proto' };

  it('applies defaults: round_robin and the module wait time', () => {
    const resolved = validateClientOptions('greeter', base, 7_000);
    expect(resolved.waitTimeoutMs).toBe(7_000);
    expect(resolved.serviceConfig).toEqual({ loadBalancingConfig: [{ round_robin: {} }] });
    expect(resolved.nestOptions).toEqual(base);
  });

  it('strips loadBalancing and waitTimeoutMs from what goes to Nest', () => {
    const resolved = validateClientOptions('greeter', { ...base, loadBalancing: 'pick_first', waitTimeoutMs: 0 }, 7_000);
    expect(resolved.waitTimeoutMs).toBe(0);
    expect(resolved.serviceConfig).toEqual({ loadBalancingConfig: [{ pick_first: {} }] });
    expect(resolved.nestOptions).not.toHaveProperty('loadBalancing');
    expect(resolved.nestOptions).not.toHaveProperty('waitTimeoutMs');
  });

  it('accepts a package list', () => {
    expect(validateClientOptions('greeter', { package: ['a', 'b'] }, 1).nestOptions.package).toEqual(['a', 'b']);
  });

  it('inserts the policy into a user service config that has none, keeping its other fields', () => {
    const methodConfig = [{ name: [{ service: 'greeter.Greeter' }], timeout: '1s' }];
    const resolved = validateClientOptions(
      'greeter',
      { ...base, loadBalancing: 'pick_first', channelOptions: { 'grpc.service_config': JSON.stringify({ methodConfig }) } },
      1,
    );
    expect(resolved.serviceConfig).toEqual({ methodConfig, loadBalancingConfig: [{ pick_first: {} }] });
  });

  it("keeps the user's own loadBalancingConfig over the loadBalancing option", () => {
    const loadBalancingConfig = [{ pick_first: { shuffleAddressList: true } }];
    const resolved = validateClientOptions(
      'greeter',
      { ...base, loadBalancing: 'round_robin', channelOptions: { 'grpc.service_config': JSON.stringify({ loadBalancingConfig }) } },
      1,
    );
    expect(resolved.serviceConfig).toEqual({ loadBalancingConfig });
  });

  it.each([
    ['a bad service name', 'a/b', base, 'serviceName', /got "a\/b"/],
    ['missing options', 'greeter', undefined, 'client options', /got undefined.*without url/],
    ['a missing package', 'greeter', { protoPath: 'x.proto' }, 'client options.package', /got undefined.*name the proto package/],
    ['a url', 'greeter', { ...base, url: 'localhost:50051' }, 'client options.url', /got "localhost:50051".*leave url out: discovery provides the addresses/],
    ['an unknown policy', 'greeter', { ...base, loadBalancing: 'least_request' }, 'client options.loadBalancing', /got "least_request".*use one of round_robin, pick_first/],
    ['a negative wait', 'greeter', { ...base, waitTimeoutMs: -1 }, 'client options.waitTimeoutMs', /got -1.*>= 0/],
    ['a fractional wait', 'greeter', { ...base, waitTimeoutMs: 0.5 }, 'client options.waitTimeoutMs', /got 0\.5/],
    [
      'service config that is not JSON',
      'greeter',
      { ...base, channelOptions: { 'grpc.service_config': '{loadBalancingConfig:' } },
      'client options.channelOptions["grpc.service_config"]',
      /got "\{loadBalancingConfig:".*pass service config as a JSON string/,
    ],
  ])('rejects %s', (_label, serviceName, options, field, message) => {
    const error = invalid(() => validateClientOptions(serviceName, options as DiscoveredClientOptions, 1_000));
    expect(error.field).toBe(field);
    expect(error.message).toMatch(message);
  });

  it('keeps the JSON parse error as the cause', () => {
    const error = invalid(() =>
      validateClientOptions('greeter', { ...base, channelOptions: { 'grpc.service_config': 'nope' } }, 1),
    );
    expect(error.cause).toBeInstanceOf(SyntaxError);
  });

  it('rejects a module default wait that is not a whole number when the client gives none', () => {
    const error = invalid(() => validateClientOptions('greeter', base, Number.NaN));
    expect(error.field).toBe('client options.waitTimeoutMs');
  });

  it('does not mutate the options it is given', () => {
    const options = Object.freeze({
      ...base,
      loadBalancing: 'pick_first' as const,
      channelOptions: Object.freeze({ 'grpc.service_config': '{"methodConfig":[]}' }),
    });
    const snapshot = JSON.stringify(options);
    validateClientOptions('greeter', options, 1);
    expect(JSON.stringify(options)).toBe(snapshot);
  });

  // BUG: service config that is valid JSON but not an object is not rejected. "null" crashes with a
  // TypeError (reading loadBalancingConfig of null); an array, number or string is silently spread
  // into the merged config (a string becomes {"0":"x",...}) instead of an InvalidDiscoveryOptionsError.
  it.each([['null'], ['[]'], ['42'], ['"x"']])('rejects service config %s that is not a JSON object', (json) => {
    expect(() => validateClientOptions('greeter', { ...base, channelOptions: { 'grpc.service_config': json } }, 1)).toThrow(
      InvalidDiscoveryOptionsError,
    );
  });
});
