// A Wharf publish target for relay tests that need to fail on demand: it stores what it receives and,
// like the broker, answers a repeated dedupId with the original result instead of storing it again.
import type { MessageInput, PublishResult } from '../../src/broker/types.js';
import type { WharfPublisher } from '../../src/patterns/index.js';

export class RecordingPublisher implements WharfPublisher {
  readonly stored: Array<{ to: string; message: MessageInput }> = [];
  readonly calls: number[] = [];
  failNext = 0;
  private readonly seen = new Map<string, PublishResult>();

  publish(name: string, message: MessageInput): Promise<PublishResult>;
  publish(name: string, messages: MessageInput[]): Promise<PublishResult[]>;
  async publish(name: string, input: MessageInput | MessageInput[]): Promise<PublishResult | PublishResult[]> {
    const list = Array.isArray(input) ? input : [input];
    this.calls.push(list.length);
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('broker unavailable (injected)');
    }
    const results = list.map((m) => {
      const key = `${name}/${m.dedupId}`;
      const previous = m.dedupId === undefined ? undefined : this.seen.get(key);
      if (previous) return { ...previous, duplicate: true };
      this.stored.push({ to: name, message: m });
      const result = { id: m.id ?? String(this.stored.length) };
      if (m.dedupId !== undefined) this.seen.set(key, result);
      return result;
    });
    return Array.isArray(input) ? results : results[0];
  }
}
