// Internal test hook (not exported by any index): make a group member behave like a crashed process —
// no more heartbeats, no more processing, no leave — so only its session timeout removes it.
import { WharfError } from '../../common/index.js';
import type { Subscription } from '../types.js';
import { TopicSubscription } from './subscription.js';

export function simulateMemberCrash(sub: Subscription): void {
  if (!(sub instanceof TopicSubscription))
    throw new WharfError('INVALID_ARGUMENT', 'simulateMemberCrash needs an embedded topic subscription');
  sub.simulateCrash();
}
