// The HTTP API's request schemas refuse unknown fields (additionalProperties: false), so each must
// list exactly the fields of its options type: a field missing here is a valid option the HTTP
// API refuses with 400 (segmentBytes was), one too many is accepted here and refused by the broker.
import { describe, expect, it } from 'vitest';
import {
  BINDING_OPTION_FIELDS,
  EXCHANGE_OPTION_FIELDS,
  NACK_OPTION_FIELDS,
  QUEUE_OPTION_FIELDS,
  RATE_LIMIT_FIELDS,
  RECEIVE_OPTION_FIELDS,
  RETRY_POLICY_FIELDS,
  TOPIC_OPTION_FIELDS,
} from '../../src/broker/index.js';
import * as S from '../../src/server/http/schemas.js';

const fieldsOf = (properties: object, ...notOptions: string[]): string[] =>
  Object.keys(properties)
    .filter((k) => !notOptions.includes(k))
    .sort();
const sorted = (fields: readonly string[]): string[] => [...fields].sort();

describe('HTTP request schemas', () => {
  it('list exactly the fields of their options types', () => {
    expect(fieldsOf(S.createTopicBody.properties, 'name')).toEqual(sorted(TOPIC_OPTION_FIELDS));
    expect(fieldsOf(S.createQueueBody.properties, 'name')).toEqual(sorted(QUEUE_OPTION_FIELDS));
    expect(fieldsOf(S.createQueueBody.properties.retry.properties)).toEqual(sorted(RETRY_POLICY_FIELDS));
    expect(fieldsOf(S.createQueueBody.properties.rateLimit.properties)).toEqual(sorted(RATE_LIMIT_FIELDS));
    expect(fieldsOf(S.createExchangeBody.properties, 'name')).toEqual(sorted(EXCHANGE_OPTION_FIELDS));
    expect(fieldsOf(S.receiveBody.properties)).toEqual(sorted([...RECEIVE_OPTION_FIELDS, 'attemptId'])); // plus the request's attempt id
    expect(fieldsOf(S.nackBody.properties, 'receipt', 'receipts')).toEqual(sorted(NACK_OPTION_FIELDS));
    expect(fieldsOf(S.bindingBody.properties, 'queue', 'topic', 'exchange', 'url', 'secret')).toEqual(
      sorted(BINDING_OPTION_FIELDS),
    );
  });
});
