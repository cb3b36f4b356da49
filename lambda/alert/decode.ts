// CloudWatch Logs subscription payloads: {"awslogs":{"data": base64(gzip(JSON))}}.
import { gunzipSync, gzipSync } from 'node:zlib';

export interface LogEvent {
  id: string;
  timestamp: number;
  message: string;
}

export interface SubscriptionBatch {
  messageType: 'DATA_MESSAGE' | 'CONTROL_MESSAGE';
  logGroup: string;
  logStream: string;
  logEvents: LogEvent[];
}

export class PayloadError extends Error {}

export function decodeSubscription(event: unknown): SubscriptionBatch {
  const data = (event as { awslogs?: { data?: unknown } } | null)?.awslogs?.data;
  if (typeof data !== 'string') throw new PayloadError('not a CloudWatch Logs subscription event (no awslogs.data)');
  let json: unknown;
  try {
    json = JSON.parse(gunzipSync(Buffer.from(data, 'base64')).toString('utf8'));
  } catch (err) {
    throw new PayloadError(`awslogs.data is not base64 gzip JSON: ${(err as Error).message}`);
  }
  const batch = json as Partial<SubscriptionBatch>;
  if (batch.messageType !== 'DATA_MESSAGE' && batch.messageType !== 'CONTROL_MESSAGE') {
    throw new PayloadError(`unknown messageType ${JSON.stringify(batch.messageType)}`);
  }
  return {
    messageType: batch.messageType,
    logGroup: String(batch.logGroup ?? ''),
    logStream: String(batch.logStream ?? ''),
    logEvents: Array.isArray(batch.logEvents) ? batch.logEvents : [],
  };
}

/** The inverse, for tests and benches: what CloudWatch Logs sends. */
export function encodeSubscription(batch: SubscriptionBatch): { awslogs: { data: string } } {
  return { awslogs: { data: gzipSync(Buffer.from(JSON.stringify(batch))).toString('base64') } };
}
