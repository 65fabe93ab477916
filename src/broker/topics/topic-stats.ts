// broker.stats(topic): per partition the log range and bytes, per group committed offsets, lag and
// owners, and the topic's recent rates.
import type { GroupStats, PartitionStats, TopicStats } from '../types.js';
import type { OffsetStore } from './offset-store.js';
import type { Topic } from './topic.js';

export function buildTopicStats(topic: Topic, offsets: OffsetStore): TopicStats {
  const partitions: PartitionStats[] = [];
  let messages = 0;
  let bytes = 0;
  for (const part of topic.partitions) {
    const { startOffset, endOffset, sizeBytes } = part.log;
    partitions.push({ partition: part.index, startOffset, endOffset, bytes: sizeBytes });
    messages += endOffset - startOffset;
    bytes += sizeBytes;
  }
  const committedByGroup = offsets.groupsOf(topic.name);
  const names = new Set<string>([...committedByGroup.keys(), ...topic.coordinators.keys()]);
  const groups: Record<string, GroupStats> = {};
  for (const group of [...names].sort()) {
    const committed = committedByGroup.get(group) ?? [];
    const coordinator = topic.coordinators.get(group);
    let groupLag = 0;
    const rows: GroupStats['partitions'] = [];
    for (const p of partitions) {
      const c = committed[p.partition] ?? -1;
      // Without a commit the whole stored range counts as lag (the group has read nothing yet).
      const lag = Math.max(0, p.endOffset - Math.max(c, p.startOffset));
      groupLag += lag;
      rows.push({ partition: p.partition, committed: c, lag, owner: coordinator?.owner(p.partition) ?? null });
    }
    groups[group] = { lag: groupLag, members: coordinator?.memberCount ?? 0, partitions: rows };
  }
  return {
    kind: 'topic',
    name: topic.name,
    partitions,
    groups,
    messages,
    bytes,
    publishRate: topic.publishMeter.rate(),
    deliverRate: topic.deliverMeter.rate(),
    errorRate: topic.errorMeter.rate(),
  };
}
