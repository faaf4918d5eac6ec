/**
 * Parsing of one image reference that starts at a given position of a text buffer.
 *
 * The parser is the reason chunk invariance holds: it looks at no more than `maxHold`
 * characters from the start of a candidate, and it only answers `need` when the buffer
 * ends inside that window and more text may still arrive. Every definite answer it gives
 * on a prefix is the answer it would give on the whole text, so the rewriter can hold
 * a candidate across deltas and decide later without ever changing text it already sent.
 */
import { DATA_IMAGE_SUBTYPES } from '../files/file-types.js'
import * as chars from '../chars.js'
import type { Resolve, Resolved } from './ports.js'

export type ParseResult =
  | { kind: 'need' }
  | { kind: 'none' }
  | { kind: 'match', end: number, text: string, dest: string, resolved: Resolved }
  /** `![alt](data:image/…;base64,` up to `bodyStart`: the base64 body follows. */
  | { kind: 'data', destStart: number, bodyStart: number, mime: string }

/**
 * The `data:` prefixes of inline images that may be stored, each with its MIME type; the
 * decoded bytes must match that type's magic bytes (see files/file-types.ts, checked by
 * files/data-store.ts).
 */
const DATA_IMAGE_PREFIXES: ReadonlyMap<string, string> = new Map(
  [...DATA_IMAGE_SUBTYPES].map(([subtype, mime]) => [`data:image/${subtype};base64,`, mime])
)
const LONGEST_DATA_PREFIX = Math.max(...[...DATA_IMAGE_PREFIXES.keys()].map((prefix) => prefix.length))

/** The data-image prefix at `at`: its MIME type, `need` while it may still become one, or none. */
function dataPrefixAt (buf: string, at: number, end: number, final: boolean): { mime: string, end: number } | 'need' | undefined {
  const seen = buf.slice(at, Math.min(end, at + LONGEST_DATA_PREFIX)).toLowerCase()
  let possible = false
  for (const [prefix, mime] of DATA_IMAGE_PREFIXES) {
    if (seen.startsWith(prefix)) return { mime, end: at + prefix.length }
    if (prefix.startsWith(seen)) possible = true
  }
  return possible && !final ? 'need' : undefined
}

// Module constants, not imported bindings, for the per-character loops (see chars.ts).
const { BACKSLASH, BACKTICK, COLON, CR, NEWLINE, SPACE, TAB } = chars

const NEED: ParseResult = { kind: 'need' }
const NONE: ParseResult = { kind: 'none' }

// CommonMark 2.4: a backslash escapes ASCII punctuation only, so `C:\Users\x.png` keeps
// its backslashes while `\(` becomes `(`.
const MARKDOWN_ESCAPE = /\\([!-/:-@[-`{-~])/g

// A bare MEDIA path ends at whitespace; sentence punctuation and emphasis markers that
// models glue to its end ("see MEDIA:/x.png.") are not part of the path.
const MEDIA_TRAILING = /[.,;:!?)\]}>"'`*_]+$/
const MEDIA_QUOTES = new Set(['`', '"', '\''])

/**
 * Nesting of brackets in alt text and of parentheses in a destination. CommonMark lets
 * implementations bound it (cmark stops at 32); without a bound, text made of `![` or
 * `![a](` repeated makes every opener scan the whole hold window, quadratic in the text.
 */
const MAX_NESTING = 32

const isBlank = (code: number): boolean => code === SPACE || code === TAB
const isSpace = (code: number): boolean => code === SPACE || code === TAB || code === NEWLINE || code === CR
const isControl = (code: number): boolean => code < 0x20 || code === 0x7f

/** Window bounds for the candidate at `start`. */
interface Window {
  end: number
  /** No more text can change the window: the stream ended or the window is full. */
  final: boolean
  /** The window is cut by the hold bound, not by the end of the text. */
  capped: boolean
}

function windowAt (buf: string, start: number, eof: boolean, maxHold: number): Window {
  const capped = buf.length - start >= maxHold
  return { end: capped ? start + maxHold : buf.length, final: eof || capped, capped }
}

/**
 * Markdown image `![alt](dest "title")`, `![alt](<dest with spaces>)` (CommonMark 6.4).
 * Alt text may nest balanced brackets; it may not contain a line break or a backtick
 * (a code span inside alt text binds tighter than the link, so we leave those alone).
 */
export function parseMarkdownImage (buf: string, start: number, eof: boolean, maxHold: number, resolve: Resolve, captureData = false): ParseResult {
  const { end, final } = windowAt(buf, start, eof, maxHold)
  const more = final ? NONE : NEED
  let j = start + 1
  if (j >= end) return more
  if (buf.charCodeAt(j) !== 0x5b /* [ */) return NONE
  j++
  let depth = 1
  for (; ; j++) {
    if (j >= end) return more
    const c = buf.charCodeAt(j)
    if (c === BACKSLASH) { j++; continue }
    if (c === NEWLINE || c === BACKTICK) return NONE
    if (c === 0x5b) {
      if (++depth > MAX_NESTING) return NONE
    } else if (c === 0x5d /* ] */ && --depth === 0) break
  }
  j++
  if (j >= end) return more
  if (buf.charCodeAt(j) !== 0x28 /* ( */) return NONE
  j++
  while (j < end && isBlank(buf.charCodeAt(j))) j++
  if (j >= end) return more
  const destStart = j
  if (captureData && (buf.charCodeAt(j) | 0x20) === 0x64 /* d */) {
    const data = dataPrefixAt(buf, j, end, final)
    if (data === 'need') return NEED
    if (data !== undefined) return { kind: 'data', destStart, bodyStart: data.end, mime: data.mime }
  }
  let rawDest: string
  if (buf.charCodeAt(j) === 0x3c /* < */) {
    for (j++; ; j++) {
      if (j >= end) return more
      const c = buf.charCodeAt(j)
      if (c === BACKSLASH) { j++; continue }
      if (c === NEWLINE || c === 0x3c) return NONE
      if (c === 0x3e /* > */) break
    }
    rawDest = buf.slice(destStart + 1, j)
    j++
  } else {
    let parens = 0
    for (; ; j++) {
      if (j >= end) return more
      const c = buf.charCodeAt(j)
      if (c === BACKSLASH) { j++; continue }
      if (isSpace(c) || isControl(c)) break
      if (c === 0x28) {
        if (++parens > MAX_NESTING) return NONE
      } else if (c === 0x29 /* ) */) {
        if (parens === 0) break
        parens--
      }
    }
    rawDest = buf.slice(destStart, j)
  }
  const destEnd = j
  // A reference stays on one line: the rewriter's line state (code blocks) relies on it.
  while (j < end && isBlank(buf.charCodeAt(j))) j++
  if (j >= end) return more
  const open = buf[j]
  if (open === '"' || open === '\'' || open === '(') {
    const close = open === '(' ? ')' : open
    for (j++; ; j++) {
      if (j >= end) return more
      const c = buf[j]
      if (c === '\\') { j++; continue }
      if (c === close) break
      if (c === '\n' || (open === '(' && c === '(')) return NONE
    }
    j++
    while (j < end && isBlank(buf.charCodeAt(j))) j++
    if (j >= end) return more
  }
  if (buf.charCodeAt(j) !== 0x29) return NONE
  const dest = rawDest.replace(MARKDOWN_ESCAPE, '$1')
  const resolved = resolve(dest, 'image')
  if (resolved === undefined) return NONE
  return {
    kind: 'match',
    end: j + 1,
    text: buf.slice(start, destStart) + resolved.url + buf.slice(destEnd, j + 1),
    dest,
    resolved
  }
}

const MEDIA_TAG = 'MEDIA:'

function allowedColon (buf: string, pathStart: number, at: number): boolean {
  return at === pathStart + 1 || (at === pathStart + 4 && buf.slice(pathStart, at).toLowerCase() === 'file')
}

/**
 * hermes' `MEDIA:<path>` tag. The path may be quoted or backticked; a bare path ends at
 * whitespace. Images become a markdown image, other media and documents a link, so Open
 * WebUI shows a picture or a clickable file.
 */
export function parseMediaTag (buf: string, start: number, eof: boolean, maxHold: number, resolve: Resolve): ParseResult {
  const { end, final, capped } = windowAt(buf, start, eof, maxHold)
  const more = final ? NONE : NEED
  let j = start
  for (let k = 0; k < MEDIA_TAG.length; k++, j++) {
    if (j >= end) return more
    if (buf[j] !== MEDIA_TAG[k]) return NONE
  }
  while (j < end && isBlank(buf.charCodeAt(j))) j++
  if (j >= end) return more
  let path: string
  const quote = buf[j] as string
  if (MEDIA_QUOTES.has(quote)) {
    const pathStart = j + 1
    for (j = pathStart; ; j++) {
      if (j >= end) return more
      const c = buf.charCodeAt(j)
      if (c === NEWLINE) return NONE
      if (buf[j] === quote) break
    }
    path = buf.slice(pathStart, j)
    j++
  } else {
    const pathStart = j
    // A bare path also ends at a colon other than a drive's (`C:`) or a file URL's
    // (`file:`): otherwise `MEDIA:MEDIA:MEDIA:…` makes every tag scan the whole window.
    while (j < end && !isSpace(buf.charCodeAt(j)) && !(buf.charCodeAt(j) === COLON && !allowedColon(buf, pathStart, j))) j++
    if (j >= end) {
      // A bare path that runs into the hold bound is not a path we can trust to be whole.
      if (capped) return NONE
      if (!eof) return NEED
    }
    path = buf.slice(pathStart, j)
    const trailing = MEDIA_TRAILING.exec(path)
    if (trailing !== null) {
      path = path.slice(0, trailing.index)
      j -= trailing[0].length
    }
  }
  if (path.length === 0) return NONE
  const resolved = resolve(path, 'media')
  if (resolved === undefined) return NONE
  const label = resolved.name.replace(/[\\[\]]/g, '\\$&')
  const text = resolved.kind === 'image' ? `![${label}](${resolved.url})` : `[${label}](${resolved.url})`
  return { kind: 'match', end: j, text, dest: path, resolved }
}
