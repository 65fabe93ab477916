// Idempotent producers: a message carrying (producerId, sequence) that this broker already stored
// for the same target resolves with the original result (duplicate: true) instead of being stored
// again, so a client may re-send a batch whose confirm it lost in a disconnect or a server crash.
// The pair is stored inside the message's own record (reserved headers `wharf.pid`/`wharf.seq`,
// message-codec.ts), written by the same append and fsync, so nothing stored can be forgotten by a
// crash. This table is memory only: each topic and queue feeds it what it stores (learn) and, on
// open, the records of the last RECOVERY_WINDOW_MS of each of its logs (rememberRecord, in the same
// pass that rebuilds the dedupId window). A publish to an exchange is stored in its queues and topics
// with producer id `<exchange>\0<producerId>`, so it is remembered for the exchange it was sent to.
import { ChurnMap, WharfError, assert } from '../common/index.js';
import type { LogRecord } from '../storage/index.js';
import { waitForOriginals } from './in-flight-waits.js';
import { H_ID, H_PRODUCER_ID, H_SEQUENCE, utf8 } from './message-codec.js';
import { ProducerResults } from './producer-results.js';
import type { MessageInput, PublishResult } from './types.js';

export { MAX_RESULTS_PER_PRODUCER } from './producer-results.js';

/** Producers remembered per broker; one that has not published since the table last passed it is forgotten first (ProducerDedupe.evictOne). */
export const MAX_PRODUCERS = 10_000;
/** After a restart, a retry is recognised when its original was stored this recently (and is still in its log). */
export const RECOVERY_WINDOW_MS = 5 * 60_000;
/** Longest producerId; it is stored with every message of an idempotent publish. */
export const MAX_PRODUCER_ID_BYTES = 256;
/** Separates target and producer id in keys and in the stored producer id of an exchange publish (names cannot hold it). */
const SEP = '\u0000';

/**
 * One publish call's claim on one producer's sequences while they are being stored: a repeat later
 * in the same batch takes that publish's result, and a concurrent publish holding a repeat waits
 * for it to settle before it claims anything (ProducerDedupe.publish). Kept as arrays per call, not
 * an entry per message: the common case (a sequence above every one seen) never searches them.
 */
interface InFlightPublish {
  /** null until the write starts. */
  run: Promise<PublishResult[]> | null;
  sequences: number[];
  /** Index in the publish's fresh messages, per sequence. */
  indexes: number[];
}

/** A repeat of another call's publish in flight: its place in the batch, and that publish's claim on it. */
interface RepeatInFlight {
  at: number;
  set: InFlightSet;
  publish: InFlightPublish;
  run: Promise<PublishResult[]>;
  /** Index in that publish's results. */
  index: number;
}

/** A producer's publishes in flight, and the highest sequence any of them claimed. */
interface InFlightSet {
  publishes: InFlightPublish[];
  maxClaimed: number;
}

/** A producer's state and whether its publishes went to an exchange (results keep only the id). */
interface ProducerAt {
  st: ProducerResults;
  routed: boolean;
}

/** Remembers a stored sequence's result (a topic's position only when the producer sent to the topic itself). */
function put({ st, routed }: ProducerAt, sequence: number, r: PublishResult): void {
  if (routed || r.partition === undefined || r.partition < 0) st.put(sequence, r.id);
  else
    st.put(
      sequence,
      r.offset !== undefined && r.offset >= 0
        ? { id: r.id, partition: r.partition, offset: r.offset }
        : { id: r.id, partition: r.partition },
    );
}

/**
 * The answer to a repeat of a sequence whose original publish resolved with `original`. When the
 * original stored its message, the repeat is marked `repeatedSequence` as well: the caller (or its
 * client, re-sending a frame whose confirm it lost) sent that same message before. When the
 * original was itself a duplicate (of a dedupId), so is the repeat, and for that reason alone.
 */
function repeatOf(original: PublishResult): PublishResult {
  return original.duplicate === true ? original : { ...original, duplicate: true, repeatedSequence: true };
}

/** A stored `wharf.seq` (decimal ASCII), or -1 when it is not one. */
function parseDecimal(bytes: Uint8Array): number {
  if (bytes.length === 0 || bytes.length > 16) return -1;
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const d = bytes[i] - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** The in-flight publish (and index in it) that claimed sequence, or null. Only for sequences at or below maxClaimed. */
function findClaim(set: InFlightSet, sequence: number): { publish: InFlightPublish; index: number } | null {
  for (const publish of set.publishes) {
    const k = publish.sequences.lastIndexOf(sequence);
    if (k >= 0) return { publish, index: publish.indexes[k] };
  }
  return null;
}

function isIdempotent(m: MessageInput | undefined): m is MessageInput & { producerId: string; sequence: number } {
  return m !== null && typeof m === 'object' && typeof m.producerId === 'string' && typeof m.sequence === 'number';
}

function validateProducerId(producerId: string): void {
  if (producerId.length === 0 || Buffer.byteLength(producerId) > MAX_PRODUCER_ID_BYTES || producerId.includes(SEP)) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `producerId ${JSON.stringify(producerId.slice(0, 40))} must be 1-${MAX_PRODUCER_ID_BYTES} bytes without U+0000; use a stable name per producer instance`,
    );
  }
}

function validateSequence(sequence: number): void {
  if (!Number.isSafeInteger(sequence) || sequence < 0) {
    throw new WharfError(
      'INVALID_ARGUMENT',
      `sequence ${JSON.stringify(sequence)} must be an integer >= 0; number the producer's messages per target`,
    );
  }
}

/**
 * Throws INVALID_ARGUMENT for a producerId or sequence that publish would refuse: for callers that
 * stamp them on messages published later (the outbox relay), so a bad one fails where it is set.
 */
export function checkProducerFields(messages: readonly MessageInput[]): void {
  ProducerDedupe.check(messages);
}

export class ProducerDedupe {
  /** In the order producers were added, or moved by evictOne. */
  private readonly producers = new Map<string, ProducerResults>();
  /**
   * Sequences being stored now, per producer key. Apart from `producers` on purpose: forgetting a
   * producer must never forget a claim, or a concurrent repeat is stored twice. A ChurnMap: an
   * entry comes and goes with every publish call.
   */
  private readonly inflight = new ChurnMap<string, InFlightSet>();
  /** rememberRecord's last producer (reset by every other state lookup). */
  private lastScanned: { leaf: string; producerId: Uint8Array; at: ProducerAt } | null = null;

  /** True when any message asks for idempotence. */
  static wants(messages: readonly MessageInput[]): boolean {
    for (const m of messages) if (isIdempotent(m)) return true;
    return false;
  }

  /** Throws INVALID_ARGUMENT for a producerId or sequence that publish would refuse. */
  static check(messages: readonly MessageInput[]): void {
    let lastValid: string | null = null;
    for (const m of messages) {
      if (!isIdempotent(m)) continue;
      if (m.producerId !== lastValid) validateProducerId(m.producerId);
      lastValid = m.producerId;
      validateSequence(m.sequence);
    }
  }

  /**
   * A record `leaf` (a queue or topic) holds, read back on open; `partition` when leaf is a topic.
   * Records without producer fields are skipped. The rebuild reads many records of one producer in
   * a row, so the last producer's state is reused while its stored id bytes repeat.
   */
  rememberRecord(leaf: string, rec: LogRecord, partition?: number): void {
    let producerId: Uint8Array | undefined;
    let sequence = -1;
    let idBytes: Uint8Array | undefined;
    for (const h of rec.headers) {
      if (h.key === H_PRODUCER_ID) producerId = h.value;
      else if (h.key === H_SEQUENCE) sequence = parseDecimal(h.value);
      else if (h.key === H_ID) idBytes = h.value;
    }
    if (producerId === undefined || sequence < 0) return;
    const last = this.lastScanned;
    let at: ProducerAt;
    if (last !== null && last.leaf === leaf && Buffer.compare(last.producerId, producerId) === 0) at = last.at;
    else {
      at = this.stateFor(leaf, utf8(producerId));
      this.lastScanned = { leaf, producerId: new Uint8Array(producerId), at }; // a copy: reads may share buffers
    }
    const id = idBytes === undefined ? '' : utf8(idBytes);
    put(at, sequence, partition === undefined ? { id } : { id, partition, offset: rec.offset });
  }

  /** `leaf` stored these messages (by publish, exchange routing or an intent's roll-forward). */
  learn(leaf: string, messages: readonly MessageInput[], results: readonly PublishResult[]): void {
    let lastProducerId: string | null = null;
    let at: ProducerAt | null = null;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      if (!isIdempotent(m) || results[i]?.duplicate === true) continue;
      // A batch is mostly one producer's: its state is looked up (and made most recent) once.
      if (m.producerId !== lastProducerId || at === null) {
        at = this.stateFor(leaf, m.producerId);
        lastProducerId = m.producerId;
      }
      put(at, m.sequence, results[i]);
    }
  }

  /**
   * Publishes the messages not seen before through `publish`; repeats resolve with the original's
   * result. All or nothing, as a batch is: a batch holding repeats of other publishes still in
   * flight first waits for those to settle, claiming nothing, then is looked at again: a repeat of
   * an original that was stored is a duplicate, one of an original that failed is stored with the
   * batch. Answered with the original's promise instead, a batch stored its fresh messages and then
   * failed with an original that failed, and a retry stored its unstamped messages twice.
   * `viaExchange`: the target stores nothing itself (KindManager.routes), so the messages go on with
   * a producer id that names it (header comment).
   * `repeatsInFlight`, when given, receives (synchronously) the result of each repeat of a publish
   * still in flight, and `publish` is called before the first await: a caller that stores the fresh
   * ones later (a transaction) claims them at once, and waits for those results itself before it
   * stores anything.
   */
  async publish(
    target: string,
    messages: MessageInput[],
    viaExchange: boolean,
    publish: (fresh: MessageInput[]) => Promise<PublishResult[]>,
    repeatsInFlight?: Array<Promise<PublishResult>>,
  ): Promise<PublishResult[]> {
    // Every message is checked before anything is looked up or claimed: a refused batch leaves no trace.
    ProducerDedupe.check(messages);
    /** Per message, the answer to a repeat whose original in flight was stored (null while nothing waited). */
    let answers: Array<PublishResult | undefined> | null = null;
    for (let round = 0; ; round++) {
      const out = new Array<PublishResult | Promise<PublishResult>>(messages.length);
      /** Whether any result is still a promise (a repeat of a publish in flight): only then is Promise.all needed. */
      let waits = false;
      const fresh: MessageInput[] = [];
      const freshIndex: number[] = [];
      /** This call's claims, per producer key (most batches hold one producer). */
      const mine = new Map<string, { set: InFlightSet; claim: InFlightPublish }>();
      /** Repeats inside this batch: [index in messages, index in fresh of the first]. */
      let repeats: Array<[number, number]> | null = null;
      /** Repeats of other calls' publishes in flight, waited for before this batch claims anything. */
      let inFlight: RepeatInFlight[] | null = null;
      let lastProducerId: string | null = null;
      let key = '';
      let st: ProducerResults | undefined;
      let own: { set: InFlightSet; claim: InFlightPublish } | undefined;
      for (let i = 0; i < messages.length; i++) {
        const m = messages[i];
        if (!isIdempotent(m)) {
          fresh.push(m);
          freshIndex.push(i);
          continue;
        }
        const answer = answers?.[i];
        if (answer !== undefined) {
          out[i] = answer; // its original was stored (or was itself a duplicate) while this call waited
          continue;
        }
        if (m.producerId !== lastProducerId) {
          // Looked up once per run of one producer's messages, and not created: only a stored result is remembered.
          key = target + SEP + m.producerId;
          st = this.producers.get(key);
          if (st !== undefined) st.publishedSincePassed = true; // evictOne's second chance
          own = mine.get(key);
          if (own === undefined) {
            let set = this.inflight.get(key);
            if (set === undefined) this.inflight.set(key, (set = { publishes: [], maxClaimed: -1 }));
            const claim: InFlightPublish = { run: null, sequences: [], indexes: [] };
            set.publishes.push(claim);
            mine.set(key, (own = { set, claim }));
          }
          lastProducerId = m.producerId;
        }
        const sequence = m.sequence;
        const set = own!.set;
        // Above everything stored and claimed, a sequence is new without a lookup (the usual case of a
        // producer counting up); below, it may be stored already or in flight.
        if (sequence <= set.maxClaimed || (st !== undefined && sequence <= st.maxStored)) {
          const seen = st?.get(sequence);
          if (seen !== undefined) {
            const original: PublishResult = typeof seen === 'string' ? { id: seen } : seen;
            // An exchange's original is remembered by its id alone (not how many targets it reached):
            // its repeat stays a plain duplicate, not a result that could pass for the original's.
            out[i] = viaExchange ? { ...original, duplicate: true } : repeatOf(original);
            continue;
          }
          const flying = findClaim(set, sequence);
          if (flying !== null) {
            if (flying.publish.run === null)
              (repeats ??= []).push([i, flying.index]); // earlier in this batch
            else if (repeatsInFlight === undefined)
              (inFlight ??= []).push({
                at: i,
                set,
                publish: flying.publish,
                run: flying.publish.run,
                index: flying.index,
              });
            else {
              const index = flying.index;
              const waiting = flying.publish.run.then((rs) => repeatOf(rs[index]));
              waiting.catch(() => undefined); // the caller waits for it through repeatsInFlight
              out[i] = waiting;
              repeatsInFlight.push(waiting);
              waits = true;
            }
            continue;
          }
        }
        this.claim(own!, sequence, fresh.length);
        fresh.push(viaExchange ? { ...m, producerId: key } : m);
        freshIndex.push(i);
      }
      if (inFlight !== null) {
        // Nothing of this batch is stored before its repeats' originals have settled: this look's
        // claims go (no await between them and this), and the next look starts from the beginning.
        this.release(mine);
        await this.waitFor(target, inFlight, (answers ??= new Array(messages.length)), round);
        continue;
      }
      if (fresh.length === 0) {
        this.release(mine);
        return waits ? Promise.all(out) : (out as PublishResult[]);
      }
      let run: Promise<PublishResult[]>;
      try {
        run = publish(fresh);
      } catch (err) {
        this.release(mine);
        throw err;
      }
      for (const { claim } of mine.values()) claim.run = run;
      try {
        const results = await run;
        for (let k = 0; k < fresh.length; k++) out[freshIndex[k]] = results[k];
        // The leaf that stored them has remembered them already (a no-op here); this covers what stored
        // nothing (an unroutable exchange publish, an overflow drop) for as long as this process lives.
        // Fresh exchange messages carry the producer id that names the exchange, so they land on the
        // same state as this publish's lookups.
        this.learn(target, fresh, results);
        if (repeats !== null) for (const [i, k] of repeats) out[i] = repeatOf(results[k]);
      } finally {
        this.release(mine);
      }
      // Promise.all costs a promise and a reaction per element, a visible share of a large batch's publish.
      return waits ? Promise.all(out) : (out as PublishResult[]);
    }
  }

  /**
   * Waits until the publishes in flight that a batch repeats have settled, stored or failed (their
   * own callers get their errors), and answers each repeat of one that was stored with its result.
   * Past MAX_IN_FLIGHT_WAITS waits, CONFLICT with nothing of the batch stored (waitForOriginals).
   */
  private async waitFor(
    target: string,
    repeats: RepeatInFlight[],
    answers: Array<PublishResult | undefined>,
    round: number,
  ): Promise<void> {
    const runs: Array<Promise<PublishResult[]>> = [];
    for (const r of repeats) if (!runs.includes(r.run)) runs.push(r.run);
    const settled = await waitForOriginals(
      runs,
      round,
      `publish to ${JSON.stringify(target)} repeats producer sequences`,
    );
    for (const r of repeats) {
      // Each publish releases its claims in the reaction to its run, queued before this wait's: so
      // the next look cannot find an original this call waited for, and each wait is for new ones.
      assert(!r.set.publishes.includes(r.publish), 'a settled publish has released its claims');
      const s = settled[runs.indexOf(r.run)];
      if (s.status === 'fulfilled') answers[r.at] = repeatOf(s.value[r.index]);
    }
  }

  private claim(own: { set: InFlightSet; claim: InFlightPublish }, sequence: number, freshIndex: number): void {
    own.claim.sequences.push(sequence);
    own.claim.indexes.push(freshIndex);
    if (sequence > own.set.maxClaimed) own.set.maxClaimed = sequence;
  }

  /** Drops one publish call's claims (done, failed, or nothing to store). */
  private release(mine: Map<string, { set: InFlightSet; claim: InFlightPublish }>): void {
    for (const [key, { set, claim }] of mine) {
      const at = set.publishes.indexOf(claim);
      if (at >= 0) set.publishes.splice(at, 1);
      if (set.publishes.length === 0 && this.inflight.get(key) === set) this.inflight.delete(key);
    }
  }

  /** The producer's state, created if new. A stored producer id holding SEP came through an exchange: it names its own target. */
  private stateFor(leaf: string, storedProducerId: string): ProducerAt {
    this.lastScanned = null;
    const routed = storedProducerId.includes(SEP);
    const key = routed ? storedProducerId : leaf + SEP + storedProducerId;
    let st = this.producers.get(key);
    if (st === undefined) {
      if (this.producers.size >= MAX_PRODUCERS) this.evictOne();
      st = new ProducerResults();
      this.producers.set(key, st);
    }
    return { st, routed };
  }

  /**
   * Forgets one producer, by second chance: from the oldest, a producer that published since the
   * table last passed it moves to the back with its mark cleared, and the first unmarked one goes.
   * So a producer that keeps publishing is never forgotten, and producers are not reordered on
   * every publish: a delete and a set per publish churned the map's table in the old generation, a
   * full GC's work every few seconds (common/churn-map.ts). One pass at most (every producer moved
   * is unmarked), and each move uses up a mark that a publish set.
   */
  private evictOne(): void {
    for (const [key, st] of this.producers) {
      this.producers.delete(key);
      if (!st.publishedSincePassed) return;
      st.publishedSincePassed = false;
      this.producers.set(key, st);
    }
  }
}
