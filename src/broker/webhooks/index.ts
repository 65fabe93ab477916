// Webhooks (HTTP push subscriptions): the delivery engine used by url bindings of exchanges.
export { WebhookDispatcher, WEBHOOK_QUEUE_PREFIX, WEBHOOK_DEFAULTS } from './dispatcher.js';
export { signWebhookBody, verifyWebhookSignature, SIGNATURE_HEADER } from './signature.js';
export type { WebhookEndpointOptions, WebhookEndpointStats, WebhookQueueHost } from './types.js';
