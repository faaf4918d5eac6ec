import type { RawEvent } from './event-stream.js'
import { createFinder } from './raw-json.js'
import { COLON, CR, NEWLINE as LF, SPACE } from '../chars.js'
import { bytesAt, expect, expectByte, indexEnd, isKeyStart, objectOfDataLine, readIndex, skipBlanks, stringEnd } from './raw-bytes.js'

/**
 * Finds, on an event's raw bytes, the text of a Responses API text delta: the two-line
 * event `event: response.output_text.delta` / `data: {…}` whose object has the keys
 * `type`, `item_id`, `output_index`, `content_index` and `delta` in any order. Only the
 * keys' values are read; any other shape is left to the parser.
 */

/** Where a delta's text and its part's identity are, as positions in the event's bytes. */
export interface DeltaSlot {
  /** `buf[itemFrom, itemTo)`: the `item_id` string literal, quotes included. */
  itemFrom: number
  itemTo: number
  outputIndex: number
  contentIndex: number
  /** `buf[from, to)`: the `delta` string literal, quotes included. */
  from: number
  to: number
}

/** The key searches of one stream, each done once per read (see `createFinder`). */
export interface DeltaFinders {
  type: (event: RawEvent) => number
  itemId: (event: RawEvent) => number
  outputIndex: (event: RawEvent) => number
  contentIndex: (event: RawEvent) => number
  delta: (event: RawEvent) => number
}

const DELTA_KEYS = { type: '"type"', itemId: '"item_id"', outputIndex: '"output_index"', contentIndex: '"content_index"', delta: '"delta"' } as const

/**
 * The finders of one stream's delta keys, each anchored past the key's frequent first
 * bytes (see `createFinder`): `ype"`, `_id"`, `_index"`, `lta"`.
 */
export function createDeltaFinders (): DeltaFinders {
  return {
    type: createFinder(DELTA_KEYS.type, 2),
    itemId: createFinder(DELTA_KEYS.itemId, 5),
    outputIndex: createFinder(DELTA_KEYS.outputIndex, 7),
    contentIndex: createFinder(DELTA_KEYS.contentIndex, 8),
    delta: createFinder(DELTA_KEYS.delta, 3)
  }
}

const EVENT = Buffer.from('event:')
const DELTA_TYPE = Buffer.from('response.output_text.delta')
const DELTA_TYPE_STRING = Buffer.from('"response.output_text.delta"')
const DATA = Buffer.from('data:')

/** The position of the value of the key found at `key` (its colon skipped), or -1. */
function valueOf (event: RawEvent, key: number, keyLength: number): number {
  const { buf, start, end } = event
  if (key === -1 || !isKeyStart(buf, key, start)) return -1
  const at = expectByte(buf, key + keyLength, end, COLON)
  return at === -1 ? -1 : skipBlanks(buf, at, end)
}

/** Fills `slot` when `event` is a text delta in the shape above. */
export function findDeltaSlot (event: RawEvent, find: DeltaFinders, slot: DeltaSlot): boolean {
  const { buf, start, end } = event
  if (event.lines !== 2) return false
  // The first line names the event; the second holds its data.
  if (!bytesAt(buf, start, EVENT)) return false
  // The field's value starts after one optional space (WHATWG HTML 9.2.6).
  let at = start + EVENT.length + (buf[start + EVENT.length] === SPACE ? 1 : 0)
  if (!bytesAt(buf, at, DELTA_TYPE)) return false
  at += DELTA_TYPE.length
  if (buf[at] !== LF && buf[at] !== CR) return false
  const line = at + (buf[at] === CR && buf[at + 1] === LF ? 2 : 1)
  if (objectOfDataLine(buf, line, end, DATA) === -1) return false
  const type = valueOf(event, find.type(event), DELTA_KEYS.type.length)
  if (type === -1 || expect(buf, type, end, DELTA_TYPE_STRING) !== type + DELTA_TYPE_STRING.length) return false
  const itemFrom = valueOf(event, find.itemId(event), DELTA_KEYS.itemId.length)
  const itemTo = stringEnd(buf, itemFrom, end)
  const outputFrom = valueOf(event, find.outputIndex(event), DELTA_KEYS.outputIndex.length)
  const outputTo = indexEnd(buf, outputFrom, end)
  const contentFrom = valueOf(event, find.contentIndex(event), DELTA_KEYS.contentIndex.length)
  const contentTo = indexEnd(buf, contentFrom, end)
  const from = valueOf(event, find.delta(event), DELTA_KEYS.delta.length)
  const to = stringEnd(buf, from, end)
  if (itemTo === -1 || outputTo === -1 || contentTo === -1 || to === -1 || from < line) return false
  slot.itemFrom = itemFrom
  slot.itemTo = itemTo
  slot.outputIndex = readIndex(buf, outputFrom, outputTo)
  slot.contentIndex = readIndex(buf, contentFrom, contentTo)
  slot.from = from
  slot.to = to
  return true
}
