import type { RawEvent } from './event-stream.js'
import { BACKSLASH, COLON, COMMA, CR, NEWLINE as LF, SPACE } from '../chars.js'
import { bytesAt, expectByte, indexEnd, objectOfDataLine, readIndex, skipBlanks, stringEnd, valueEnd } from './raw-bytes.js'

/**
 * Finds, on an event's raw bytes, the text of a Responses API text delta: the two-line
 * event `event: response.output_text.delta` / `data: {…}` whose object has the keys
 * `type`, `item_id`, `output_index`, `content_index` and `delta`, in any order, each
 * once, and any others. Only those keys' values are read; any other shape is left to
 * the parser.
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

const EVENT = Buffer.from('event:')
const DELTA_TYPE = Buffer.from('response.output_text.delta')
const DELTA_TYPE_STRING = Buffer.from('"response.output_text.delta"')
const DATA = Buffer.from('data:')

/** The keys a delta is read by, one bit each: a key given twice is seen. */
const TYPE = 1
const ITEM_ID = 2
const OUTPUT_INDEX = 4
const CONTENT_INDEX = 8
const DELTA = 16
const ALL_KEYS = TYPE | ITEM_ID | OUTPUT_INDEX | CONTENT_INDEX | DELTA
const KEY_WORDS = ['"type"', '"item_id"', '"output_index"', '"content_index"', '"delta"'].map((key) => Buffer.from(key))
const KEY_BITS = [TYPE, ITEM_ID, OUTPUT_INDEX, CONTENT_INDEX, DELTA]
/** A key with an escape: it may spell one of the keys above (`"de\u006cta"`). */
const ESCAPED = -1

/** Which key the literal `buf[from, to)` is: one of the bits above, 0 for another, or ESCAPED. */
function keyOf (buf: Buffer, from: number, to: number): number {
  // Indexed, not destructured: a walk runs cold, where an iterator allocates.
  for (let k = 0; k < KEY_WORDS.length; k++) {
    const word = KEY_WORDS[k] as Buffer
    if (word.length === to - from && bytesAt(buf, from, word)) return KEY_BITS[k] as number
  }
  for (let at = from + 1; at < to - 1; at++) if (buf[at] === BACKSLASH) return ESCAPED
  return 0
}

/** An index as JSON writes it: no leading zero. */
function indexValueEnd (buf: Buffer, at: number, end: number): number {
  const to = indexEnd(buf, at, end)
  return to - at > 1 && buf[at] === 0x30 ? -1 : to
}

/**
 * Where the values that change from one delta of a part to the next are, filled by
 * `findDeltaSlot` as pairs of positions in the order they came: the delta's text and
 * every value of another key (`sequence_number`, `logprobs`, OpenAI's `obfuscation`).
 */
interface Holes {
  at: number[]
  /** Which pair is the delta's text. */
  delta: number
}

/**
 * Fills `slot` when `event` is a text delta in the shape above, walking its object key
 * by key: every key is read (a key given twice, or one spelled with an escape, leaves the
 * event to the parser, since JSON.parse keeps a duplicate key's last value) and every
 * value of another key is skipped by JSON's grammar, up to the brace that closes it.
 */
export function findDeltaSlot (event: RawEvent, slot: DeltaSlot, holes?: Holes): boolean {
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
  const open = objectOfDataLine(buf, line, end, DATA)
  if (open === -1) return false
  // The brace that closes the object is the line's last byte (objectOfDataLine).
  let close = end - 1
  while (buf[close] === LF || buf[close] === CR) close--
  if (holes !== undefined) holes.at.length = 0
  let seen = 0
  at = open + 1
  for (;;) {
    const keyFrom = skipBlanks(buf, at, close)
    const keyTo = stringEnd(buf, keyFrom, close)
    if (keyTo === -1) return false
    const key = keyOf(buf, keyFrom, keyTo)
    if (key === ESCAPED || (seen & key) !== 0) return false
    seen |= key
    const value = skipBlanks(buf, expectByte(buf, keyTo, close, COLON), close)
    if (value === -1) return false
    let valueTo: number
    if (key === TYPE) {
      valueTo = bytesAt(buf, value, DELTA_TYPE_STRING) ? value + DELTA_TYPE_STRING.length : -1
    } else if (key === ITEM_ID) {
      valueTo = stringEnd(buf, value, close)
      slot.itemFrom = value
      slot.itemTo = valueTo
    } else if (key === OUTPUT_INDEX || key === CONTENT_INDEX) {
      valueTo = indexValueEnd(buf, value, close)
      if (valueTo !== -1 && key === OUTPUT_INDEX) slot.outputIndex = readIndex(buf, value, valueTo)
      if (valueTo !== -1 && key === CONTENT_INDEX) slot.contentIndex = readIndex(buf, value, valueTo)
    } else {
      valueTo = key === DELTA ? stringEnd(buf, value, close) : valueEnd(buf, value, close)
      if (key === DELTA) {
        slot.from = value
        slot.to = valueTo
        if (holes !== undefined) holes.delta = holes.at.length
      }
      holes?.at.push(value, valueTo)
    }
    if (valueTo === -1) return false
    at = skipBlanks(buf, valueTo, close)
    if (at === close) return seen === ALL_KEYS
    if (buf[at] !== COMMA) return false
    at++
  }
}

/** The most bytes and values of a shape remembered: the common ones are 150 to 250 bytes and 2 to 5 values. */
const MAX_SHAPE = 512
const MAX_HOLES = 8
/** Each piece starts on a 4-byte word of its own: up to 3 bytes of padding per piece. */
const SHAPE_ROOM = MAX_SHAPE + 4 * (MAX_HOLES + 1)

/** How a delta was found: not at all, by a walk over its keys, or as the same shape as the last one. */
export type DeltaMatch = 'none' | 'walked' | 'shape'

/**
 * A finder of delta slots for one stream. The deltas of one part have one shape: the
 * same bytes everywhere but in the delta's text and in the values of keys that change
 * from one event to the next (`sequence_number`, `obfuscation`, a timestamp). Once a
 * delta was walked key by key, the next is first compared with its bytes, piece by
 * piece, each changing value skipped by JSON's grammar: the same keys in the same order,
 * with the same part's identity, and nothing that could add a key, so no walk.
 *
 * The pieces are compared four bytes at a time: a delta's fixed bytes are 150 to 250
 * (the event line, the keys, the item id), and a loop over single bytes made the
 * comparison a quarter of the stream's CPU time; `Buffer.compare` costs 80 ns a call
 * whatever its length, a 32-bit read through a DataView 1 ns per four bytes.
 */
export function createDeltaSlotFinder (): (event: RawEvent, slot: DeltaSlot) => DeltaMatch {
  const holes: Holes = { at: [], delta: 0 }
  /** The bytes of the last delta walked, without its changing values, as bytes and as 32-bit words. */
  // One allocation for both: a stream opens one finder.
  const memory = new ArrayBuffer(2 * SHAPE_ROOM)
  const fixed = Buffer.from(memory, 0, SHAPE_ROOM)
  const fixedView = new DataView(memory, 0, SHAPE_ROOM)
  const words = new Int32Array(memory, SHAPE_ROOM, SHAPE_ROOM / 4)
  /** Where each piece of `fixed` starts (on a word) and ends; a changing value follows each but the last. */
  const pieceFrom: number[] = []
  const pieceTo: number[] = []
  let pieces = 0
  let deltaHole = 0
  /** The item's literal: its piece, its offset in it, its length. */
  let itemPiece = 0
  let itemOffset = 0
  let itemLength = 0
  let outputIndex = 0
  let contentIndex = 0
  /** A view of the read the last event came in, for its 32-bit reads. */
  let viewed: Buffer | undefined
  let view: DataView = fixedView

  function remember (event: RawEvent, slot: DeltaSlot): void {
    const { buf, start, end } = event
    const at = holes.at
    pieces = 0
    if (at.length / 2 > MAX_HOLES || end - start - holeBytes(at) > MAX_SHAPE) return
    let length = 0
    let from = start
    for (let h = 0; h <= at.length; h += 2) {
      const to = h < at.length ? at[h] as number : end
      if (slot.itemFrom >= from && slot.itemFrom < to) {
        itemPiece = h / 2
        itemOffset = slot.itemFrom - from
      }
      pieceFrom[h / 2] = length
      length += buf.copy(fixed, length, from, to)
      pieceTo[h / 2] = length
      length = (length + 3) & ~3
      from = at[h + 1] as number
    }
    // Read little-endian whatever the platform, as the event's bytes are.
    for (let w = 0; w < length / 4; w++) words[w] = fixedView.getInt32(4 * w, true)
    pieces = at.length / 2 + 1
    deltaHole = holes.delta / 2
    itemLength = slot.itemTo - slot.itemFrom
    outputIndex = slot.outputIndex
    contentIndex = slot.contentIndex
  }

  /** True when piece `p` of the shape is at `buf[at]`, within `end`. */
  function pieceAt (buf: Buffer, at: number, end: number, p: number): boolean {
    let k = pieceFrom[p] as number
    const to = pieceTo[p] as number
    if (at + to - k > end) return false
    for (; k + 4 <= to; k += 4, at += 4) if (view.getInt32(at, true) !== words[k >> 2]) return false
    for (; k < to; k++, at++) if (buf[at] !== fixed[k]) return false
    return true
  }

  function sameShape (event: RawEvent, slot: DeltaSlot): boolean {
    const { buf, start, end } = event
    if (buf !== viewed) {
      viewed = buf
      view = new DataView(buf.buffer, buf.byteOffset, buf.length)
    }
    let at = start
    for (let p = 0; p < pieces; p++) {
      if (!pieceAt(buf, at, end, p)) return false
      if (p === itemPiece) slot.itemFrom = at + itemOffset
      at += (pieceTo[p] as number) - (pieceFrom[p] as number)
      if (p === pieces - 1) break
      const valueTo = p === deltaHole ? stringEnd(buf, at, end) : valueEnd(buf, at, end)
      if (valueTo === -1) return false
      if (p === deltaHole) {
        slot.from = at
        slot.to = valueTo
      }
      at = valueTo
    }
    if (at !== end) return false
    slot.itemTo = slot.itemFrom + itemLength
    slot.outputIndex = outputIndex
    slot.contentIndex = contentIndex
    return true
  }

  return (event, slot) => {
    // A line end inside a changing value would make a third line.
    if (event.lines !== 2) return 'none'
    if (pieces > 0 && sameShape(event, slot)) return 'shape'
    if (!findDeltaSlot(event, slot, holes)) return 'none'
    remember(event, slot)
    return 'walked'
  }
}

function holeBytes (at: number[]): number {
  let bytes = 0
  for (let h = 0; h < at.length; h += 2) bytes += (at[h + 1] as number) - (at[h] as number)
  return bytes
}
