// Binds under way (prepared, not yet in the registry while their journal entry is written) and their
// cancellation by deleteExchange, so the registry never holds a binding that a restart would not replay.
import { WharfError, assert } from '../../common/index.js';
import type { BindingInfo } from '../exchange-types.js';
import { isDroppedWith } from './binding.js';

export interface BindInFlight {
  readonly binding: BindingInfo;
  /** The deleted exchange that cancelled this bind, or null. */
  cancelledBy: string | null;
}

export class BindsInFlight {
  /** At most the binds callers have under way at once; each is removed when its bind settles. */
  private readonly binds = new Set<BindInFlight>();

  start(binding: BindingInfo): BindInFlight {
    const bind: BindInFlight = { binding, cancelledBy: null };
    this.binds.add(bind);
    return bind;
  }

  /** The bindings under way, for the cycle check of a new bind (prepared and started in one synchronous step). */
  *bindings(): IterableIterator<BindingInfo> {
    for (const bind of this.binds) yield bind.binding;
  }

  end(bind: BindInFlight): void {
    assert(this.binds.delete(bind), 'a bind in flight ends once');
  }

  /**
   * deleteExchange(exchange): cancels every bind under way that its drop entry removes at replay (of
   * the exchange, or leading to it), also when a namesake is created before the bind resumes. Call
   * in the same synchronous step as appending that entry: a bind that checks before its own append
   * then sees the cancel exactly when the drop entry is ahead of it in the journal (and writes
   * nothing), and one that checks after sees it exactly when the drop entry follows its own.
   */
  cancelFor(exchange: string): void {
    for (const bind of this.binds) if (isDroppedWith(bind.binding, exchange)) bind.cancelledBy ??= exchange;
  }

  /**
   * Throws NOT_FOUND when a deleteExchange cancelled the bind. Checked right before its entry is
   * appended (no await in between) and again once it is written.
   */
  check(bind: BindInFlight): void {
    const gone = bind.cancelledBy;
    if (gone === null) return;
    const { exchange } = bind.binding;
    throw new WharfError(
      'NOT_FOUND',
      gone === exchange
        ? `exchange ${JSON.stringify(exchange)} was deleted while this binding was being made; nothing of it was kept. Create the exchange and bind again`
        : `exchange ${JSON.stringify(gone)}, which this binding of ${JSON.stringify(exchange)} leads to, was deleted while the binding was being made; nothing of it was kept`,
    );
  }
}
