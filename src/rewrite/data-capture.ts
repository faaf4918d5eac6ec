/**
 * Streaming capture of one inline image, `![alt](data:image/png;base64,…)`. Such an image
 * can be megabytes long, far past the rewriter's hold bound, so it is not re-parsed as
 * it grows: its base64 body is collected piece by piece (the only text held while it
 * lasts), and its end is parsed once the body stops.
 */

/** The text after the body may hold a title: `…= "title")`. */
const MAX_TAIL = 1024

const isBase64 = (c: number): boolean =>
  (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2f || c === 0x3d

type CaptureStep =
  /** Everything given was taken; more text is needed. */
  | { kind: 'more' }
  /** The image ended at `end` (exclusive) in the buffer; `tail` is its text after the body, `)` included. */
  | { kind: 'done', end: number, base64: string, tail: string, original: string }
  /** Not an image we can store: `original` is the text taken so far; the buffer resumes at `resume`. */
  | { kind: 'abort', original: string, resume: number }

export interface DataCapture {
  /** The text from `!` to the start of the destination (`![alt](`), kept in the output. */
  readonly lead: string
  readonly mime: string
  step: (buf: string, from: number, eof: boolean) => CaptureStep
}

/**
 * @param head the text from `!` to the end of `;base64,`
 * @param leadLength how much of `head` comes before the destination
 * @param maxChars the longest base64 body accepted; longer ones are released untouched
 */
export function createDataCapture (head: string, leadLength: number, mime: string, maxChars: number): DataCapture {
  const parts: string[] = []
  let size = 0
  let tail: string | undefined

  const original = (): string => head + parts.join('') + (tail ?? '')

  return {
    lead: head.slice(0, leadLength),
    mime,
    step (buf, from, eof) {
      let i = from
      if (tail === undefined) {
        while (i < buf.length && isBase64(buf.charCodeAt(i))) i++
        if (i > from) {
          size += i - from
          if (size > maxChars) return { kind: 'abort', original: original(), resume: from }
          parts.push(buf.slice(from, i))
        }
        if (i === buf.length) return eof ? { kind: 'abort', original: original(), resume: i } : { kind: 'more' }
        tail = ''
      }
      const seen = tail + buf.slice(i)
      const closed = closingLength(seen, eof || seen.length >= MAX_TAIL)
      if (closed === 'need') {
        tail = seen
        return { kind: 'more' }
      }
      if (closed === 'none') {
        const taken = original()
        return { kind: 'abort', original: taken, resume: i }
      }
      const end = i + closed - tail.length
      const base64 = parts.join('')
      const closing = seen.slice(0, closed)
      return { kind: 'done', end, base64, tail: closing, original: head + base64 + closing }
    }
  }
}

/**
 * Length of `  "title")` at the start of `text` (CommonMark link tail, on one line), or
 * `need` while more text could complete it.
 */
function closingLength (text: string, final: boolean): number | 'need' | 'none' {
  const more = final ? 'none' : 'need'
  let j = 0
  const blanks = (): void => { while (j < text.length && (text[j] === ' ' || text[j] === '\t')) j++ }
  blanks()
  if (j >= text.length) return more
  const open = text[j]
  if (open === '"' || open === '\'' || open === '(') {
    const close = open === '(' ? ')' : open
    for (j++; ; j++) {
      if (j >= text.length) return more
      const c = text[j]
      if (c === '\\') { j++; continue }
      if (c === close) break
      if (c === '\n' || (open === '(' && c === '(')) return 'none'
    }
    j++
    blanks()
    if (j >= text.length) return more
  }
  return text[j] === ')' ? j + 1 : 'none'
}
