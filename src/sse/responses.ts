import type { EventSourceMessage } from 'eventsource-parser'
import { isObject } from '../json.js'
import type { JsonObject } from '../json.js'
import { rewriteItem, rewritePart } from '../rewrite/responses-body.js'
import type { Rewriter } from '../rewrite/rewriter.js'
import { createDeltaSlotFinder } from './delta-slot.js'
import { BACKSLASH } from '../chars.js'
import { endsWholeCharacter, isHighSurrogate, readString, writeCodePoint, writeJsonText } from './raw-bytes.js'
import type { DeltaSlot } from './delta-slot.js'
import type { EventHandler, RawEvent } from './event-stream.js'
import { createFinder, replaceData, replaceStrings } from './raw-json.js'
import { serializeEvent } from './serialize.js'

/** Each open text part holds at most one reference; past this many, parts pass through. */
export const MAX_PARTS = 64

const EMPTY = Buffer.alloc(0)

const TERMINAL = new Set(['response.completed', 'response.failed', 'response.incomplete'])
/** Events that end the answer with the upstream's own error. */
const FAILED = new Set(['error', 'response.failed'])

/** `"sequence_number": 12` at the top level of an event. */
const SEQUENCE = /("sequence_number"\s*:\s*)(\d+)/

/**
 * Texts up to this size (in UTF-8 bytes for a part's deltas, in characters for a text
 * seen whole) are remembered with their rewrite, so that the full text repeated in
 * `*.done` and `response.completed` is not rewritten (and its files not resolved)
 * again; the benchmark's profile put those repeats at a fifth of the stream's CPU time.
 */
const MAX_REMEMBERED = 256 * 1024
/** All remembered texts of one stream together: a hostile stream of ever new texts stays bounded. */
const MAX_REMEMBERED_TOTAL = 4 * MAX_REMEMBERED

/** A UTF-16 unit that is half of a pair without its other half (`"\ud83c"` in JSON). */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
/** Any half of a pair: a plain scan, the lookarounds above only where one is found. */
const SURROGATE = /[\ud800-\udfff]/
const hasLoneSurrogate = (text: string): boolean => SURROGATE.test(text) && LONE_SURROGATE.test(text)

/**
 * Pieces up to this long are copied by a loop: a delta is a few words, and the native
 * copy's call costs more than the loop over them.
 */
const SHORT_PIECE = 64

/** The first room for a part's text, in bytes; it doubles as the text grows. */
const FIRST_ROOM = 1024

/**
 * Bytes appended one piece after the other, in a buffer that doubles when full: a
 * part's text kept as its deltas came, without a string built per delta.
 */
interface Bytes {
  buf: Buffer
  length: number
}

function room (bytes: Bytes, more: number): void {
  const need = bytes.length + more
  if (need <= bytes.buf.length) return
  const grown = Buffer.allocUnsafe(Math.max(need, 2 * bytes.buf.length, FIRST_ROOM))
  bytes.buf.copy(grown, 0, 0, bytes.length)
  bytes.buf = grown
}

function appendBytes (bytes: Bytes, buf: Buffer, from: number, to: number): void {
  room(bytes, to - from)
  if (to - from > SHORT_PIECE) {
    bytes.length += buf.copy(bytes.buf, bytes.length, from, to)
    return
  }
  const target = bytes.buf
  let at = bytes.length
  for (let i = from; i < to; i++) target[at++] = buf[i] as number
  bytes.length = at
}

/**
 * Appends `text` in UTF-8; `length` is at least its UTF-8 length. The texts kept have
 * no lone surrogate (`keepText`), so every surrogate here is half of a pair.
 */
function appendText (bytes: Bytes, text: string, length: number): void {
  room(bytes, length)
  const target = bytes.buf
  if (text.length > SHORT_PIECE) {
    bytes.length += target.write(text, bytes.length)
    return
  }
  // A short text by a loop: the native encoder's call costs more than encoding a delta.
  let at = bytes.length
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    at = writeCodePoint(target, at, isHighSurrogate(c) ? 0x10000 + ((c - 0xd800) << 10) + (text.charCodeAt(++i) - 0xdc00) : c)
  }
  bytes.length = at
}

/**
 * Appends the text of the JSON string content `buf[from, to)` in UTF-8 (a delta taken on
 * its bytes may hold `\\u00e9`, `\\"` or `\\/`). False, with nothing appended, when it
 * has an escape that is not JSON's or a lone surrogate: that text would not survive UTF-8.
 */
function appendLiteral (bytes: Bytes, buf: Buffer, from: number, to: number): boolean {
  if (to - from > SHORT_PIECE) {
    const escape = buf.indexOf(BACKSLASH, from)
    if (escape === -1 || escape >= to) {
      appendBytes(bytes, buf, from, to)
      return true
    }
  }
  // No text is longer than its literal.
  room(bytes, to - from)
  const at = writeJsonText(buf, from, to, bytes.buf, bytes.length)
  if (at === -1) return false
  bytes.length = at
  return true
}

/** A part that ended with its text kept (see `keepEnded`); `size` counts its bytes. */
interface EndedPart {
  original: Bytes
  rewritten: Bytes | undefined
  size: number
}

interface Part {
  rewriter: Rewriter
  /**
   * The part's text as it came, in UTF-8; undefined once it grew too long, or when its
   * bytes might not decode to the text of its deltas (see `keepBytes`).
   */
  original: Bytes | undefined
  /** The text as it went out, once it differs from the text as it came. */
  rewritten: Bytes | undefined
  itemId: unknown
  outputIndex: unknown
  contentIndex: unknown
}

/**
 * Transforms a `/v1/responses` event stream. `response.output_text.delta` events go
 * through one rewriter per (output item, content part); the full texts repeated in
 * `*.done` and `response.completed` are rewritten whole, which by chunk invariance gives
 * the same text as the deltas. Text still held when a part ends is sent in a delta of its
 * own just before `response.output_text.done`; every later `sequence_number` is shifted
 * by the events inserted, so numbers stay strictly increasing without gaps.
 */
export function createResponsesHandler (newRewriter: () => Rewriter, rewriteWhole: (text: string) => string): EventHandler {
  const parts = new Map<string, Part>()
  let shift = 0
  let complete = false
  /** Whole texts already rewritten: a finished part's deltas, or a text seen before. */
  const remembered = new Map<string, string>()
  let rememberedSize = 0

  function remember (text: string, result: string): void {
    const size = text.length + result.length
    if (text.length > MAX_REMEMBERED || rememberedSize + size > MAX_REMEMBERED_TOTAL || remembered.has(text)) return
    remembered.set(text, result)
    rememberedSize += size
  }

  /**
   * Parts that ended with their text kept, as bytes: a text is compared with them before
   * it is rewritten, so a part's text is decoded only when it comes again, and then only
   * if its deltas' output differs from it.
   */
  const ended: EndedPart[] = []

  /** Keeps the text of a part that ended; the oldest goes once MAX_PARTS are kept. */
  function keepEnded (original: Bytes, rewritten: Bytes | undefined): void {
    if (original.length === 0) return
    if (ended.length === MAX_PARTS) forgetEnded(0)
    const size = original.length + (rewritten?.length ?? 0)
    if (rememberedSize + size > MAX_REMEMBERED_TOTAL) return
    ended.push({ original, rewritten, size })
    rememberedSize += size
  }

  function forgetEnded (i: number): void {
    rememberedSize -= (ended[i] as EndedPart).size
    ended.splice(i, 1)
  }

  /** The output of the ended part whose text is `text`, if one was kept. */
  function endedText (text: string): string | undefined {
    if (ended.length === 0) return undefined
    const length = Buffer.byteLength(text)
    for (let i = 0; i < ended.length; i++) {
      const { original, rewritten } = ended[i] as EndedPart
      // A lone surrogate becomes the bytes of a replacement character: another text.
      if (original.length !== length || hasLoneSurrogate(text)) continue
      if (Buffer.from(text).compare(original.buf, 0, length) !== 0) continue
      forgetEnded(i)
      // By chunk invariance the deltas' output is the rewrite of the whole text.
      return rewritten === undefined ? text : rewritten.buf.toString('utf8', 0, rewritten.length)
    }
    return undefined
  }

  function rewriteText (text: string): string {
    const known = remembered.get(text)
    if (known !== undefined) return known
    const result = endedText(text) ?? rewriteWhole(text)
    remember(text, result)
    return result
  }

  /**
   * The part the last delta went to, by the raw bytes of its `item_id` literal and its
   * indices: the next delta of the same part is matched on its bytes, with no key built.
   */
  let lastPart: Part | undefined
  let lastItem: Buffer = Buffer.alloc(0)
  let lastOutput = -1
  let lastContent = -1

  function part (event: JsonObject): Part | undefined {
    const key = `${String(event.item_id)}\u0000${String(event.output_index)}\u0000${String(event.content_index)}`
    let found = parts.get(key)
    if (found === undefined && parts.size < MAX_PARTS) {
      found = { rewriter: newRewriter(), original: { buf: EMPTY, length: 0 }, rewritten: undefined, itemId: event.item_id, outputIndex: event.output_index, contentIndex: event.content_index }
      parts.set(key, found)
    }
    if (found !== undefined && typeof event.item_id === 'string' && Number.isSafeInteger(event.output_index) && Number.isSafeInteger(event.content_index)) {
      lastPart = found
      lastItem = Buffer.from(JSON.stringify(event.item_id))
      lastOutput = event.output_index as number
      lastContent = event.content_index as number
    }
    return found
  }

  /** A delta event carrying released text, numbered just before `sequence`. */
  function releaseDelta (found: Part, text: string, sequence: unknown, out: string[]): void {
    const data: JsonObject = { type: 'response.output_text.delta' }
    if (typeof sequence === 'number') data.sequence_number = sequence + shift
    data.item_id = found.itemId
    data.output_index = found.outputIndex
    data.content_index = found.contentIndex
    data.delta = text
    data.logprobs = []
    out.push(serializeEvent({ event: 'response.output_text.delta', data: JSON.stringify(data) }))
    shift++
  }

  /** True while the part's text is still kept and `more` bytes of it fit. */
  function keeps (found: Part, more: number): boolean {
    const original = found.original
    if (original === undefined) return false
    if (original.length + more <= MAX_REMEMBERED) return true
    found.original = undefined
    found.rewritten = undefined
    return false
  }

  /**
   * A delta that went out as it came, taken on its bytes: `buf[from, to)` is its JSON
   * string's content, whose text is kept with its escapes undone. Decoded joined to the
   * next deltas, bytes that end inside a UTF-8 sequence could make one character of what
   * each delta decoded on its own made two replacement characters: such a part is not
   * kept, nor one with a lone surrogate.
   */
  function keepBytes (found: Part, buf: Buffer, from: number, to: number): void {
    if (!keeps(found, to - from)) return
    const original = found.original as Bytes
    const length = original.length
    if (!endsWholeCharacter(buf, from, to) || !appendLiteral(original, buf, from, to)) {
      found.original = undefined
      found.rewritten = undefined
      return
    }
    if (found.rewritten !== undefined) appendBytes(found.rewritten, original.buf, length, original.length)
  }

  /**
   * A delta's text as it came and as it went out. The output is kept apart only from
   * the first delta that did not go out whole and unchanged (a reference rewritten, text
   * held or released). A lone surrogate would not survive UTF-8: such a part is not kept.
   */
  function keepText (found: Part, text: string, rewritten: string, wasHolding: boolean): void {
    // A UTF-16 unit is one to three bytes: the exact count is needed only near the bound.
    let length = 3 * text.length
    if (found.original !== undefined && found.original.length + length > MAX_REMEMBERED) {
      length = text.length > MAX_REMEMBERED ? MAX_REMEMBERED + 1 : Buffer.byteLength(text)
    }
    if (!keeps(found, length)) return
    if (hasLoneSurrogate(text) || (rewritten !== text && hasLoneSurrogate(rewritten))) {
      found.original = undefined
      found.rewritten = undefined
      return
    }
    const original = found.original as Bytes
    if (found.rewritten === undefined && (wasHolding || found.rewriter.holding || rewritten !== text)) {
      found.rewritten = { buf: Buffer.allocUnsafe(Math.max(FIRST_ROOM, original.length)), length: 0 }
      appendBytes(found.rewritten, original.buf, 0, original.length)
    }
    appendText(original, text, length)
    if (found.rewritten !== undefined) appendText(found.rewritten, rewritten, 3 * rewritten.length)
  }

  function release (found: Part, sequence: unknown, out: string[]): void {
    const text = found.rewriter.end()
    if (text.length > 0) releaseDelta(found, text, sequence, out)
    keepText(found, '', text, false)
    if (found.original !== undefined) keepEnded(found.original, found.rewritten)
    // The kept bytes are the ended part's now: deltas after its end (a hostile stream)
    // must not add to them.
    found.original = undefined
    found.rewritten = undefined
  }

  function flushAll (sequence: unknown, out: string[]): void {
    for (const found of parts.values()) release(found, sequence, out)
    parts.clear()
    lastPart = undefined
  }

  // Anchored past a frequent first byte (see createFinder).
  const finders = [
    createFinder('output_text', 6), createFinder('"error"', 2), createFinder('response.failed', 8),
    createFinder('response.incomplete', 8), createFinder('response.completed', 11)
  ]
  const findSlot = createDeltaSlotFinder()
  const slot: DeltaSlot = { itemFrom: 0, itemTo: 0, outputIndex: 0, contentIndex: 0, from: 0, to: 0 }
  /** The part of the shape `findSlot` remembers, once its identity was compared with it. */
  let shapePart: Part | undefined

  /**
   * A text delta of the part the last one went to, taken on its bytes. Plain text (no
   * byte that can start a reference, change the code state or end a line) is not even
   * decoded and the event goes as it came; other text is decoded and pushed through the
   * part's rewriter, and when it changed, replaces the string literal. Undefined sends
   * the event to the parser (another part, another shape, or numbers to shift).
   */
  function takeDelta (event: RawEvent, out: Array<Buffer | string>): 'forward' | 'replaced' | undefined {
    if (lastPart === undefined || shift > 0) return undefined
    const match = findSlot(event, slot)
    if (match === 'none') return undefined
    const { buf, start, end } = event
    // The same shape has the same identity bytes: compared once per shape and part.
    if (match === 'walked' || shapePart !== lastPart) {
      shapePart = undefined
      if (slot.outputIndex !== lastOutput || slot.contentIndex !== lastContent ||
        buf.compare(lastItem, 0, lastItem.length, slot.itemFrom, slot.itemTo) !== 0) return undefined
      shapePart = lastPart
    }
    const found = lastPart
    if (found.rewriter.pushPlainBytes(buf, slot.from + 1, slot.to - 1)) {
      keepBytes(found, buf, slot.from + 1, slot.to - 1)
      return 'forward'
    }
    const text = readString(buf, slot.from, slot.to)
    if (text === undefined) return undefined
    const wasHolding = found.rewriter.holding
    const rewritten = found.rewriter.push(text)
    keepText(found, text, rewritten, wasHolding)
    if (rewritten === text) return 'forward'
    out.push(buf.subarray(start, slot.from), JSON.stringify(rewritten), buf.subarray(slot.to, end))
    return 'replaced'
  }

  /** The event's data with its changed texts replaced where they are, else serialized again. */
  function edit (event: EventSourceMessage, data: JsonObject, changes: Map<string, Array<[string, string]>>, sequence: unknown): string {
    let text: string | undefined = event.data
    for (const [key, pairs] of changes) if (text !== undefined && pairs.length > 0) text = replaceStrings(text, key, pairs)
    if (text !== undefined && shift > 0 && typeof sequence === 'number') {
      const found = SEQUENCE.exec(text)
      text = found !== null && Number(found[2]) === sequence ? text.replace(SEQUENCE, `$1${sequence + shift}`) : undefined
    }
    return text ?? JSON.stringify(data)
  }

  return {
    inspect (event, out) {
      // Once events were inserted, every later one is renumbered.
      if (shift > 0) return 'decode'
      const taken = takeDelta(event, out)
      if (taken !== undefined) return taken
      for (const finder of finders) if (finder(event) !== -1) return 'decode'
      return 'forward'
    },
    onEvent (event: EventSourceMessage, raw: string, before: string[]) {
      let data: unknown
      try {
        data = JSON.parse(event.data)
      } catch {
        return undefined
      }
      if (!isObject(data) || typeof data.type !== 'string') return undefined
      const sequence = data.sequence_number
      const changes = new Map<string, Array<[string, string]>>([['delta', []], ['text', []], ['output_text', []]])
      const record = (key: string) => (text: string): string => {
        const result = rewriteText(text)
        if (result !== text) changes.get(key)?.push([text, result])
        return result
      }
      let changed = false
      switch (data.type) {
        case 'response.output_text.delta': {
          const found = typeof data.delta === 'string' ? part(data) : undefined
          if (found !== undefined) {
            const wasHolding = found.rewriter.holding
            const text = found.rewriter.push(data.delta as string)
            keepText(found, data.delta as string, text, wasHolding)
            if (text !== data.delta) {
              changes.get('delta')?.push([data.delta as string, text])
              changed = true
              data.delta = text
            }
          }
          break
        }
        case 'response.output_text.done': {
          const found = part(data)
          if (found !== undefined) release(found, sequence, before)
          if (typeof data.text === 'string') {
            const text = record('text')(data.text)
            changed = text !== data.text
            data.text = text
          }
          break
        }
        case 'response.content_part.added':
        case 'response.content_part.done':
          changed = isObject(data.part) && rewritePart(data.part, record('text'))
          break
        case 'response.output_item.added':
        case 'response.output_item.done':
          changed = isObject(data.item) && rewriteItem(data.item, record('text'))
          break
        default:
          if (TERMINAL.has(data.type) || FAILED.has(data.type)) {
            flushAll(sequence, before)
            complete = true
          }
          if (isObject(data.response)) {
            const response = data.response
            if (typeof response.output_text === 'string') {
              const text = record('output_text')(response.output_text)
              changed = text !== response.output_text
              response.output_text = text
            }
            if (Array.isArray(response.output)) {
              for (const item of response.output) if (isObject(item) && rewriteItem(item, record('text'))) changed = true
            }
          }
      }
      if (!changed && !(shift > 0 && typeof sequence === 'number')) return undefined
      if (shift > 0 && typeof sequence === 'number') data.sequence_number = sequence + shift
      const next = edit(event, data, changes, sequence)
      return replaceData(raw, event.data, next) ?? serializeEvent({ ...event, data: next })
    },
    flush (out: string[]) {
      flushAll(undefined, out)
    },
    done: false,
    get complete () {
      return complete
    }
  }
}
