import type { EventSourceMessage } from 'eventsource-parser'
import { isObject } from '../json.js'
import type { JsonObject } from '../json.js'
import { rewriteItem, rewritePart } from '../rewrite/responses-body.js'
import type { Rewriter } from '../rewrite/rewriter.js'
import { createDeltaFinders, findDeltaSlot } from './delta-slot.js'
import { readString } from './raw-bytes.js'
import type { DeltaSlot } from './delta-slot.js'
import type { EventHandler, RawEvent } from './event-stream.js'
import { createFinder, replaceData, replaceStrings } from './raw-json.js'
import { serializeEvent } from './serialize.js'

/** Each open text part holds at most one reference; past this many, parts pass through. */
export const MAX_PARTS = 64

const TERMINAL = new Set(['response.completed', 'response.failed', 'response.incomplete'])
/** Events that end the answer with the upstream's own error. */
const FAILED = new Set(['error', 'response.failed'])

/** `"sequence_number": 12` at the top level of an event. */
const SEQUENCE = /("sequence_number"\s*:\s*)(\d+)/

/**
 * Texts up to this size are remembered with their rewrite, so that the full text repeated
 * in `*.done` and `response.completed` is not rewritten (and its files not resolved)
 * again; the benchmark's profile put those repeats at a fifth of the stream's CPU time.
 */
const MAX_REMEMBERED = 256 * 1024
/** All remembered texts of one stream together: a hostile stream of ever new texts stays bounded. */
const MAX_REMEMBERED_TOTAL = 4 * MAX_REMEMBERED

interface Part {
  rewriter: Rewriter
  /** The part's text as it came, and as it went out; undefined once it grew too long. */
  original: string | undefined
  rewritten: string
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

  function rewriteText (text: string): string {
    const known = remembered.get(text)
    if (known !== undefined) return known
    const result = rewriteWhole(text)
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
      found = { rewriter: newRewriter(), original: '', rewritten: '', itemId: event.item_id, outputIndex: event.output_index, contentIndex: event.content_index }
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

  /** Text of a part as it goes out, and (while short enough) as it came. */
  function track (found: Part, original: string, rewritten: string): void {
    if (found.original === undefined) return
    if (found.original.length + original.length > MAX_REMEMBERED) {
      found.original = undefined
      found.rewritten = ''
      return
    }
    found.original += original
    found.rewritten += rewritten
  }

  function release (found: Part, sequence: unknown, out: string[]): void {
    const text = found.rewriter.end()
    if (text.length > 0) releaseDelta(found, text, sequence, out)
    track(found, '', text)
    // By chunk invariance the deltas' output is the rewrite of the whole text.
    if (found.original !== undefined) remember(found.original, found.rewritten)
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
  const find = createDeltaFinders()
  const slot: DeltaSlot = { itemFrom: 0, itemTo: 0, outputIndex: 0, contentIndex: 0, from: 0, to: 0 }

  /**
   * A text delta of the part the last one went to, taken on its bytes: only its text is
   * decoded and pushed through the part's rewriter. Text that changes nothing leaves the
   * event as it came; changed text replaces the string literal. Undefined sends the
   * event to the parser (another part, another shape, or numbers to shift).
   */
  function takeDelta (event: RawEvent, out: Array<Buffer | string>): 'forward' | 'replaced' | undefined {
    if (lastPart === undefined || shift > 0 || !findDeltaSlot(event, find, slot)) return undefined
    const { buf, start, end } = event
    if (slot.outputIndex !== lastOutput || slot.contentIndex !== lastContent ||
      buf.compare(lastItem, 0, lastItem.length, slot.itemFrom, slot.itemTo) !== 0) return undefined
    const text = readString(buf, slot.from, slot.to)
    if (text === undefined) return undefined
    const rewritten = lastPart.rewriter.push(text)
    track(lastPart, text, rewritten)
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
            const text = found.rewriter.push(data.delta as string)
            track(found, data.delta as string, text)
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
