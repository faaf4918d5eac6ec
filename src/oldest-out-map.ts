/**
 * A map that holds at most `max` entries: adding one more forgets the entry added first.
 * Not an LRU: reading an entry does not keep it longer. The memories it serves (links
 * resolved a moment ago, "send the original" decisions) are cheap to make again, so the
 * simplest bound is enough; a Map's insertion order gives the oldest in O(1).
 */
export interface OldestOutMap<K, V> {
  get: (key: K) => V | undefined
  has: (key: K) => boolean
  /** Adds or replaces; adding past `max` first forgets the oldest entry. */
  set: (key: K, value: V) => void
  delete: (key: K) => boolean
}

/** `max` is at least 1. */
export function createOldestOutMap<K, V> (max: number): OldestOutMap<K, V> {
  const entries = new Map<K, V>()
  return {
    get: (key) => entries.get(key),
    has: (key) => entries.has(key),
    set (key, value) {
      if (entries.size >= max && !entries.has(key)) entries.delete(entries.keys().next().value as K)
      entries.set(key, value)
    },
    delete: (key) => entries.delete(key)
  }
}
