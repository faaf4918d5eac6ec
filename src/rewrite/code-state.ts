/**
 * Just enough CommonMark to leave code alone, fed one character at a time: fenced code
 * blocks (a run of 3+ backticks or tildes after at most 3 spaces at a line start, closed
 * by a run of the same character at least as long, CommonMark 4.5), indented code blocks
 * (4.4) and inline code spans (a run of n backticks closed by a run of exactly n, or
 * abandoned at a blank line, 6.1). The state depends only on text already seen, so the
 * rewriter never holds text back for it.
 *
 * Simplifications against the spec err towards leaving text alone: an unclosed backtick
 * run keeps its paragraph in "code" and a fence's info string is not checked.
 */
import * as chars from '../chars.js'

// Module constants, not imported bindings, for the per-character loop (see chars.ts).
const { BACKSLASH, BACKTICK, CR, NEWLINE, QUOTE, SLASH, SMALL_U, SPACE, TAB, TILDE, hex4, isWordChar } = chars

/** Where a reference starting at the next character would stand. */
export type Place =
  /** In a code span or a fenced or indented code block: to be left alone. */
  | 'code'
  /** Right after a backslash that escapes it (CommonMark 2.4): literal text. */
  | 'escaped'
  | 'text'

/** The code state of one text stream. */
export interface CodeState {
  /** Advances over one character that is not part of a reference. */
  advance: (c: number) => void
  /**
   * Advances over text holding no backtick, tilde, backslash, CR or line feed: the same
   * state as `advance` over each of its characters, but only the ones before the line's
   * first non-blank character are looked at one by one.
   */
  advancePlain: (text: string) => void
  /**
   * `advancePlain` over `buf[from, to)`, the UTF-8 bytes of a JSON string's content,
   * undecoded: every byte of a multi-byte character is 0x80 or above, which no rule of
   * the code state looks at, so the state after its bytes is the state after the
   * character. Its escapes may only be the plain ones (`plainEscapeLength`).
   */
  advancePlainBytes: (buf: Uint8Array, from: number, to: number) => void
  /**
   * A reference (`!` or `M`, neither of which is a list marker) may start at the next
   * character: settles a pending backtick run and the kind of the line, and tells where
   * the reference would stand. When none is taken there, that character is then fed to
   * `advance` like any other.
   */
  place: () => Place
  /** The last character was a word character: a `MEDIA:` here is part of a longer word. */
  afterWord: () => boolean
  /** A reference ending with the character `last` was taken on the current line. */
  afterReference: (last: number) => void
}

/** A character past ASCII, as the code state sees every one of them. */
const NON_ASCII = 0x80

/**
 * The length of the JSON escape at `buf[at]` (a backslash) when the character it stands
 * for is plain text to the rewriter and the code state: `\"` and `\/` (2 bytes), or
 * `\uXXXX` (6) of a character past ASCII, which no rule looks at. Any other escape
 * (`\\`, `\n`, an ASCII `\u0021`…) and one cut by `to` give 0. Backends that write JSON
 * with ASCII only (Python's `json.dumps`, hermes) escape every accent and emoji this way.
 */
export function plainEscapeLength (buf: Uint8Array, at: number, to: number): number {
  const next = buf[at + 1]
  if (at + 2 > to) return 0
  if (next === QUOTE || next === SLASH) return 2
  return next === SMALL_U && hex4(buf, at + 2, to) >= NON_ASCII ? 6 : 0
}

/** `-`, `*`, `+` or a digit as the first character of a line (CommonMark 5.2). */
const isListMarker = (c: number): boolean => c === 0x2d || c === 0x2a || c === 0x2b || (c >= 0x30 && c <= 0x39)

/**
 * Creates the code state of one text in the shape of eventsource-parser's
 * `createParser`: closure state, no I/O, constant memory.
 */
export function createCodeState (): CodeState {
  // Fenced block: its character and run length; 0 outside one.
  let fenceChar = 0
  let fenceLen = 0
  // Open code span: the length of its opening run; 0 outside one.
  let span = 0
  // The run of backticks or tildes being read, settled by the first other character.
  let run = 0
  let runChar = 0
  let runAtLineStart = false
  let lineStart = true
  let indent = 0
  let lineBlank = true
  let escaped = false
  let prevWord = false
  // Indented code blocks (CommonMark 4.4): a line indented 4+ spaces after a blank line or
  // another such line. Inside a list the same indent continues a list item instead.
  let lineEntered = false
  let lineCode = false
  let prevLineBlank = true
  let prevLineCode = false
  let inList = false

  /** A run of backticks or tildes ended: open or close code accordingly. */
  function settleRun (): void {
    const atStart = runAtLineStart
    const length = run
    run = 0
    if (fenceChar !== 0) {
      if (runChar === fenceChar && atStart && length >= fenceLen) fenceChar = 0
      return
    }
    if (runChar === BACKTICK) {
      if (span !== 0) {
        if (length === span) span = 0
      } else if (atStart && length >= 3) {
        fenceChar = BACKTICK
        fenceLen = length
      } else {
        span = length
      }
    } else if (span === 0 && atStart && length >= 3) {
      fenceChar = TILDE
      fenceLen = length
    }
  }

  /**
   * The first non-blank character of a line decides whether the line is indented code,
   * and whether a list starts or ends (a list marker, or a paragraph after a blank line).
   */
  function enterLine (listMarker: boolean): void {
    lineEntered = true
    if (fenceChar !== 0 || span !== 0) return
    if (indent >= 4) {
      if (!inList && (prevLineBlank || prevLineCode)) lineCode = true
      return
    }
    if (listMarker) inList = true
    else if (prevLineBlank) inList = false
  }

  function advance (c: number): void {
    if (c === NEWLINE) {
      if (run > 0) settleRun()
      // CommonMark 6.1: a code span cannot cross a paragraph break.
      if (lineBlank) span = 0
      prevLineBlank = lineBlank
      prevLineCode = lineCode
      lineCode = false
      lineEntered = false
      lineStart = true
      indent = 0
      lineBlank = true
      escaped = false
      prevWord = false
      return
    }
    if (!lineEntered && c !== SPACE && c !== TAB && c !== CR) enterLine(isListMarker(c))
    if (lineCode) {
      lineStart = false
      lineBlank = false
      prevWord = isWordChar(c)
      return
    }
    if ((c === BACKTICK || c === TILDE) && !escaped) {
      if (run > 0 && runChar === c) {
        run++
      } else {
        if (run > 0) settleRun()
        run = 1
        runChar = c
        runAtLineStart = lineStart && indent <= 3
      }
      lineStart = false
      lineBlank = false
      prevWord = false
      return
    }
    if (run > 0) settleRun()
    if (c === SPACE || c === TAB || c === CR) {
      // A CR that is not part of a CRLF counts as no indentation.
      if (lineStart) indent += c === TAB ? 4 : c === SPACE ? 1 : 0
      escaped = false
      prevWord = false
      return
    }
    lineStart = false
    lineBlank = false
    // Backslash escapes exist only outside code (CommonMark 6.1, 2.4).
    escaped = c === BACKSLASH && !escaped && fenceChar === 0 && span === 0
    prevWord = isWordChar(c)
  }

  // advancePlain and advancePlainBytes are twins that differ only in how they read a
  // character (a string's code unit, a byte): keep them in step. A test feeds both the
  // same text and compares the states they leave. One body for both (reading through a
  // `string | Uint8Array` check, or even only the tail below in a shared function)
  // measured 0.5 to 1.7 ns slower per call, on calls of about 9 ns over plain deltas;
  // one of them runs for every forwarded delta.
  function advancePlain (text: string): void {
    let i = 0
    // One character settles a pending run; the line's first non-blank one decides its kind.
    for (; (!lineEntered || run > 0) && i < text.length; i++) advance(text.charCodeAt(i))
    // Past those, no character can change the code state and the rest is what the last
    // one leaves, so the caller's regex test replaces a loop over the common delta.
    if (i < text.length) {
      lineStart = false
      lineBlank = false
      escaped = false
      prevWord = isWordChar(text.charCodeAt(text.length - 1))
    }
  }

  // The twin of advancePlain, on the UTF-8 bytes of a JSON string's content (see above):
  // change both or neither. Its only escapes are those `plainEscapeLength` takes, each
  // one character that is neither a word character nor one the state looks at.
  function advancePlainBytes (buf: Uint8Array, from: number, to: number): void {
    let i = from
    for (; (!lineEntered || run > 0) && i < to; i++) {
      const c = buf[i] as number
      if (c !== BACKSLASH) {
        advance(c)
      } else if (buf[i + 1] === SMALL_U) {
        advance(NON_ASCII)
        i += 5
      } else {
        advance(buf[++i] as number)
      }
    }
    if (i < to) {
      lineStart = false
      lineBlank = false
      escaped = false
      // A text that ends with `\u00e9` ends with no word character, though its last byte
      // is one (`\"` and `\/` end with what they stand for).
      prevWord = !(to - 6 >= from && buf[to - 6] === BACKSLASH && buf[to - 5] === SMALL_U) && isWordChar(buf[to - 1] as number)
    }
  }

  return {
    advance,
    advancePlain,
    advancePlainBytes,
    place () {
      if (run > 0) settleRun()
      if (!lineEntered) enterLine(false)
      if (fenceChar !== 0 || span !== 0 || lineCode) return 'code'
      return escaped ? 'escaped' : 'text'
    },
    // A method, not a getter: an object literal with an accessor makes every call on it
    // slower, advance included.
    afterWord: () => prevWord,
    afterReference (last) {
      // A reference never spans lines, so the line state is the one it started in.
      lineStart = false
      lineBlank = false
      escaped = false
      prevWord = isWordChar(last)
    }
  }
}
