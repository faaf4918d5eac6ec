/**
 * Reading JSON and SSE on raw bytes, for the events the streaming path takes without
 * decoding them: each helper looks at a few bytes where a field is expected, and says
 * "not here" (-1) for anything else, so the caller can hand the event to the parser.
 */
import {
  BACKSLASH, CLOSE_BRACE, CLOSE_BRACKET, COLON, COMMA, CR, DIGIT_0 as ZERO, DIGIT_9 as NINE, NEWLINE as LF, OPEN_BRACE, OPEN_BRACKET, QUOTE, SMALL_U, SPACE, TAB, hex4
} from '../chars.js'

/** Bytes of a string literal looked at one by one before a native search takes over. */
const SHORT_STRING = 64

/** Digits of a number read as an index (a choice, a part), not one to compute with. */
const MAX_INDEX_DIGITS = 9

const isBlank = (c: number | undefined): boolean => c === SPACE || c === TAB

export function skipBlanks (buf: Buffer, at: number, end: number): number {
  while (at < end && isBlank(buf[at])) at++
  return at
}

/**
 * True when the first `length` bytes of `word` are at `buf[at]`: a loop of compares,
 * cheaper than a native call for the few dozen bytes it is used on.
 */
export function bytesAt (buf: Buffer, at: number, word: Buffer, length = word.length): boolean {
  if (at < 0 || at + length > buf.length) return false
  for (let k = 0; k < length; k++) if (buf[at + k] !== word[k]) return false
  return true
}

/** The position after `word` at `buf[at]` (blanks skipped first), or -1. */
export function expect (buf: Buffer, at: number, end: number, word: Buffer): number {
  if (at === -1) return -1
  at = skipBlanks(buf, at, end)
  if (at + word.length > end) return -1
  for (let k = 0; k < word.length; k++) if (buf[at + k] !== word[k]) return -1
  return at + word.length
}

/** The position after the byte `c` at `buf[at]` (blanks skipped first), or -1. */
export function expectByte (buf: Buffer, at: number, end: number, c: number): number {
  if (at === -1) return -1
  at = skipBlanks(buf, at, end)
  return at < end && buf[at] === c ? at + 1 : -1
}

/** The position just past the JSON string literal that opens at `at`, or -1. */
export function stringEnd (buf: Buffer, at: number, end: number): number {
  if (at === -1 || buf[at] !== QUOTE) return -1
  // Most literals are a few words: looking at their bytes costs less than a native
  // search's call; a long one (an inline image) is searched natively.
  const near = Math.min(end, at + SHORT_STRING)
  let q = at + 1
  while (q < near && buf[q] !== QUOTE) q++
  if (q === near) q = buf.indexOf(QUOTE, near)
  for (; q !== -1 && q < end; q = buf.indexOf(QUOTE, q + 1)) {
    let slashes = 0
    while (buf[q - 1 - slashes] === BACKSLASH) slashes++
    if (slashes % 2 === 0) return q + 1
  }
  return -1
}

/** Where the unsigned integer at `buf[at]` (blanks skipped first) ends, or -1. */
export function indexEnd (buf: Buffer, at: number, end: number): number {
  if (at === -1) return -1
  at = skipBlanks(buf, at, end)
  const from = at
  while (at < end && (buf[at] as number) >= ZERO && (buf[at] as number) <= NINE) at++
  return at > from && at - from <= MAX_INDEX_DIGITS ? at : -1
}

/** The value of the digits `buf[from, to)`. */
export function readIndex (buf: Buffer, from: number, to: number): number {
  let value = 0
  for (let at = skipBlanks(buf, from, to); at < to; at++) value = value * 10 + (buf[at] as number) - ZERO
  return value
}

/**
 * True when `buf[key]` starts a key of an object, not text inside a string: the byte
 * before it (blanks skipped) opens the object or follows a value.
 */
export function isKeyStart (buf: Buffer, key: number, start: number): boolean {
  let before = key - 1
  while (before > start && isBlank(buf[before])) before--
  return buf[before] === OPEN_BRACE || buf[before] === COMMA
}

/**
 * The position of the `{` that opens the JSON object of the data line at `buf[line]`
 * (`data:` and its optional space), when that line holds one object (its last byte
 * before the line end is `}`); else -1. `lineEnd` is where the line's bytes end.
 */
export function objectOfDataLine (buf: Buffer, line: number, lineEnd: number, data: Buffer): number {
  if (!bytesAt(buf, line, data)) return -1
  const open = line + data.length + (buf[line + data.length] === SPACE ? 1 : 0)
  let last = lineEnd - 1
  while (last > open && (buf[last] === LF || buf[last] === CR)) last--
  return buf[open] === OPEN_BRACE && buf[last] === CLOSE_BRACE ? open : -1
}

/**
 * The text of the JSON string literal `buf[from, to)` (quotes included), or undefined
 * when it is not valid JSON. Without escapes its bytes are the text, decoded once.
 */
export function readString (buf: Buffer, from: number, to: number): string | undefined {
  const text = buf.toString('utf8', from + 1, to - 1)
  if (text.indexOf('\\') === -1) return text
  try {
    return JSON.parse(buf.toString('utf8', from, to)) as string
  } catch {
    return undefined
  }
}

const MINUS = 0x2d
const PLUS = 0x2b
const DOT = 0x2e
const isExponent = (c: number | undefined): boolean => c === 0x65 || c === 0x45
const isDigit = (c: number | undefined): boolean => c !== undefined && c >= ZERO && c <= NINE
const LITERALS = [Buffer.from('true'), Buffer.from('false'), Buffer.from('null')]

/** Lists and objects a value may nest; a deeper one is left to the parser. */
const MAX_DEPTH = 32

function digitsEnd (buf: Buffer, at: number, end: number): number {
  while (at < end && isDigit(buf[at])) at++
  return at
}

/** Just past the JSON number at `buf[at]`, by JSON's grammar (RFC 8259 section 6), or -1. */
function numberEnd (buf: Buffer, at: number, end: number): number {
  if (buf[at] === MINUS) at++
  if (at < end && buf[at] === ZERO) {
    at++
  } else {
    const from = at
    at = digitsEnd(buf, at, end)
    if (at === from) return -1
  }
  if (at < end && buf[at] === DOT) {
    const from = ++at
    at = digitsEnd(buf, at, end)
    if (at === from) return -1
  }
  if (at < end && isExponent(buf[at])) {
    at++
    if (at < end && (buf[at] === PLUS || buf[at] === MINUS)) at++
    const from = at
    at = digitsEnd(buf, at, end)
    if (at === from) return -1
  }
  return at
}

/**
 * The position just past the JSON value that starts at `buf[at]` (no blanks before it),
 * or -1. Lists and objects are walked by JSON's grammar (keys, colons, commas, nesting);
 * strings are found by their closing quote, their escapes not checked (as `stringEnd`).
 * A value whose bytes end where this says parses as one value, so nothing after it can
 * be taken for a part of it, nor anything inside it for a key of the object around it.
 */
export function valueEnd (buf: Buffer, at: number, end: number, depth = 0): number {
  const c = buf[at]
  if (at < 0 || at >= end || c === undefined) return -1
  if (c === QUOTE) return stringEnd(buf, at, end)
  if (c === OPEN_BRACKET || c === OPEN_BRACE) {
    if (depth === MAX_DEPTH) return -1
    const object = c === OPEN_BRACE
    const close = object ? CLOSE_BRACE : CLOSE_BRACKET
    at = skipBlanks(buf, at + 1, end)
    if (at < end && buf[at] === close) return at + 1
    for (;;) {
      if (object) at = skipBlanks(buf, expectByte(buf, stringEnd(buf, at, end), end, COLON), end)
      at = skipBlanks(buf, valueEnd(buf, at, end, depth + 1), end)
      if (at === -1 || at >= end) return -1
      if (buf[at] === close) return at + 1
      if (buf[at] !== COMMA) return -1
      at = skipBlanks(buf, at + 1, end)
    }
  }
  if (c === MINUS || isDigit(c)) return numberEnd(buf, at, end)
  for (const literal of LITERALS) if (at + literal.length <= end && bytesAt(buf, at, literal)) return at + literal.length
  return -1
}

/**
 * True when `buf[from, to)` does not end inside a UTF-8 sequence: its last character is
 * whole (or an invalid byte the decoder already gave up on), so these bytes joined to
 * the next ones decode to the text of each decoded on its own. A sequence that may still
 * be open says false, even where the decoder would give up on it.
 */
export function endsWholeCharacter (buf: Buffer, from: number, to: number): boolean {
  let lead = to - 1
  // Continuation bytes are 10xxxxxx; a character has at most three.
  while (lead >= from && lead > to - 4 && ((buf[lead] as number) & 0xc0) === 0x80) lead--
  if (lead < from || lead === to - 4) return true
  const c = buf[lead] as number
  const needs = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0
  return to - 1 - lead >= needs
}

export const isHighSurrogate = (c: number): boolean => c >= 0xd800 && c < 0xdc00
const isLowSurrogate = (c: number): boolean => c >= 0xdc00 && c < 0xe000

/** Writes the UTF-8 of the code point `c` (not a surrogate) at `target[at]`; returns the position after it. */
export function writeCodePoint (target: Buffer, at: number, c: number): number {
  if (c < 0x80) {
    target[at++] = c
  } else if (c < 0x800) {
    target[at++] = 0xc0 | (c >> 6)
    target[at++] = 0x80 | (c & 0x3f)
  } else if (c < 0x10000) {
    target[at++] = 0xe0 | (c >> 12)
    target[at++] = 0x80 | ((c >> 6) & 0x3f)
    target[at++] = 0x80 | (c & 0x3f)
  } else {
    target[at++] = 0xf0 | (c >> 18)
    target[at++] = 0x80 | ((c >> 12) & 0x3f)
    target[at++] = 0x80 | ((c >> 6) & 0x3f)
    target[at++] = 0x80 | (c & 0x3f)
  }
  return at
}

/** What JSON's two-byte escapes stand for, by their second byte (RFC 8259 section 7). */
const SHORT_ESCAPES: ReadonlyMap<number, number> = new Map([
  [0x22, 0x22], [0x5c, 0x5c], [0x2f, 0x2f], [0x62, 0x08], [0x66, 0x0c], [0x6e, 0x0a], [0x72, 0x0d], [0x74, 0x09]
])

/**
 * Writes the text of the JSON string content `buf[from, to)` (no quotes) in UTF-8 at
 * `target[at]`: its bytes, each escape replaced by the character it stands for, a pair
 * of `\uXXXX` surrogates by one four-byte character. Returns the position after it, or
 * -1 for an escape that is not JSON's or a surrogate without its other half (a text
 * UTF-8 cannot hold). `target` needs room for `to - from` bytes: no text is longer than
 * its escaped form.
 */
export function writeJsonText (buf: Buffer, from: number, to: number, target: Buffer, at: number): number {
  for (let i = from; i < to; i++) {
    const c = buf[i] as number
    if (c !== BACKSLASH) {
      target[at++] = c
      continue
    }
    const short = SHORT_ESCAPES.get(buf[i + 1] as number)
    if (short !== undefined && i + 1 < to) {
      target[at++] = short
      i++
      continue
    }
    let code = buf[i + 1] === SMALL_U ? hex4(buf, i + 2, to) : -1
    i += 5
    if (isHighSurrogate(code) && buf[i + 1] === BACKSLASH && buf[i + 2] === SMALL_U) {
      const low = hex4(buf, i + 3, to)
      code = isLowSurrogate(low) ? 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00) : -1
      i += 6
    }
    if (code === -1 || isHighSurrogate(code) || isLowSurrogate(code)) return -1
    at = writeCodePoint(target, at, code)
  }
  return at
}
