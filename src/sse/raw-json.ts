import { BACKSLASH, COLON, QUOTE } from '../chars.js'
import type { RawEvent } from './event-stream.js'
import { bytesAt } from './raw-bytes.js'

/**
 * Small edits on the JSON text an upstream sent, so that an event whose answer text
 * changed differs from the original only inside that text: keys, spacing, number forms
 * and provider extras stay exactly as they came.
 */

const isWhitespace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d

/** The index just past the JSON string literal that opens at `start`, or -1. */
function stringEnd (json: string, start: number): number {
  for (let at = json.indexOf('"', start + 1); at !== -1; at = json.indexOf('"', at + 1)) {
    let slashes = 0
    while (json.charCodeAt(at - 1 - slashes) === BACKSLASH) slashes++
    if (slashes % 2 === 0) return at + 1
  }
  return -1
}

/**
 * Replaces, in order of appearance, the string values of `key` whose value is
 * `pairs[i][0]` by `pairs[i][1]`. Undefined when any of them was not found (the caller
 * then serializes the parsed object instead).
 */
export function replaceStrings (json: string, key: string, pairs: ReadonlyArray<readonly [string, string]>): string | undefined {
  const quotedKey = `"${key}"`
  let out = ''
  let from = 0
  let next = 0
  let pos = 0
  while (next < pairs.length) {
    const at = json.indexOf(quotedKey, pos)
    if (at === -1) return undefined
    let j = at + quotedKey.length
    while (isWhitespace(json.charCodeAt(j))) j++
    pos = j
    if (json.charCodeAt(j) !== COLON) continue
    j++
    while (isWhitespace(json.charCodeAt(j))) j++
    pos = j
    if (json.charCodeAt(j) !== QUOTE) continue
    const end = stringEnd(json, j)
    if (end === -1) return undefined
    pos = end
    const pair = pairs[next] as readonly [string, string]
    if (JSON.parse(json.slice(j, end)) !== pair[0]) continue
    out += json.slice(from, j) + JSON.stringify(pair[1])
    from = end
    next++
  }
  return out + json.slice(from)
}

/** The event's text with its single-line `data` replaced, or undefined when its data spans lines. */
export function replaceData (raw: string, data: string, replacement: string): string | undefined {
  if (data.indexOf('\n') !== -1) return undefined
  // The last line that starts with `data:` holds it (the data itself has no line end);
  // the first line may follow the stream's BOM.
  const end = Math.max(raw.lastIndexOf('\ndata:'), raw.lastIndexOf('\rdata:'))
  const line = end !== -1 ? end + 1 : raw.charCodeAt(0) === 0xfeff ? 1 : 0
  const at = line + 5 + (raw.charCodeAt(line + 5) === 0x20 ? 1 : 0)
  return raw.slice(0, at) + replacement + raw.slice(at + data.length)
}

/**
 * Finds a fixed byte string in the events of one read. Events are looked at in order, so
 * one search serves every event up to the next match: the common event with no match
 * costs no scan of its own, and the read is scanned once, natively, not once per event.
 *
 * `anchor` is where in `text` the native search starts: Node finds a needle by looking
 * for its first byte and comparing from there, so a needle that starts with `"` (every
 * key and string of the JSON) or a common letter stops at almost every byte. Searching
 * from a rare byte (`rror"` for `"error"`) made a read with no match 6 times cheaper to
 * scan; the bytes before the anchor are then compared where it was found.
 */
export function createFinder (text: string, anchor = 0): (event: RawEvent) => number {
  const whole = Buffer.from(text, 'utf8')
  const needle = whole.subarray(anchor)
  let buf: Buffer | undefined
  let searchedFrom = 0
  let found = -1

  function search (buf: Buffer, from: number): number {
    for (let at = buf.indexOf(needle, from + anchor); at !== -1; at = buf.indexOf(needle, at + 1)) {
      if (bytesAt(buf, at - anchor, whole, anchor)) return at - anchor
    }
    return -1
  }

  return (event) => {
    if (event.buf !== buf || event.start < searchedFrom || (found !== -1 && found < event.start)) {
      buf = event.buf
      searchedFrom = event.start
      found = search(buf, event.start)
    }
    // A needle has no line end, so one that starts inside an event ends inside it.
    return found !== -1 && found < event.end ? found : -1
  }
}
