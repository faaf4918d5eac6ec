import type { EventSourceMessage } from 'eventsource-parser'
import { isObject } from '../json.js'
import type { JsonObject as Json } from '../json.js'
import type { Rewriter } from '../rewrite/rewriter.js'
import type { EventHandler } from './event-stream.js'
import { serializeData, serializeEvent } from './serialize.js'

/**
 * Hostile upstreams could name any number of choices; each one holds at most one
 * reference. Choices past this count pass through unrewritten.
 */
export const MAX_CHOICES = 64

/** The last chunk's fields, or a bare chunk when it was not a JSON object after all. */
function parseTemplate (data: string): Json {
  try {
    const parsed: unknown = JSON.parse(data)
    if (isObject(parsed)) return parsed
  } catch {
    // Not JSON: the fast path takes chunks by their shape, before anything parses them.
  }
  return { object: 'chat.completion.chunk' }
}

const isChoiceIndex = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0

/** A `finish_reason` with a string value; `"finish_reason": null` is the common case. */
const FINISH_SET = /"finish_reason"\s*:\s*"/

/**
 * The common content chunk, in OpenAI's and hermes' field order: one choice,
 * `"delta": {"content": "…"}`, no finish. Its text is rewritten in place in the raw data
 * (the `d` flag gives the literal's exact offsets), so nothing is parsed or serialized
 * but the one string, and the rest of the event stays byte-identical. The benchmark's
 * profile showed whole-chunk JSON.parse and JSON.stringify as the largest cost per event.
 */
// The string literal is written as an unrolled loop: an alternation repeated per
// character recurses in V8's regex engine and overflows its stack on multi-megabyte
// content.
const CONTENT_CHUNK = /"choices":\s*\[\{"index":\s*(\d{1,9}),\s*"delta":\s*\{"content":\s*("[^"\\]*(?:\\.[^"\\]*)*")\}(?:,\s*"logprobs":\s*null)?,\s*"finish_reason":\s*null\}\]/d
/** Past this, a chunk takes the general path; the fast path is for ordinary deltas. */
const FAST_PATH_MAX = 64 * 1024

export interface ChatStreamOptions {
  /**
   * Drop events with an `event:` field other than `message`. Chat completions streams
   * carry only unnamed chunks; strict clients (the Vercel AI SDK, LibreChat, opencode)
   * parse every event as one and fail on hermes' `event: hermes.tool.progress`.
   */
  dropNamedEvents?: boolean
}

interface ChoiceState {
  rewriter: Rewriter
  finished: boolean
}

/**
 * Transforms a `/v1/chat/completions` event stream: `choices[].delta.content` goes through
 * one rewriter per `choices[].index`; every other event and field is forwarded as it came.
 *
 * Held text is released in a chunk of its own just before the chunk that carries the
 * choice's `finish_reason` (so clients see the whole answer before the finish), at
 * `[DONE]`, and when the upstream ends.
 */
export function createChatCompletionsHandler (newRewriter: () => Rewriter, options: ChatStreamOptions = {}): EventHandler {
  const dropNamedEvents = options.dropNamedEvents === true
  const choices = new Map<number, ChoiceState>()
  let holding = 0
  let done = false
  /** The last chunk's data; its top-level fields are reused for chunks of released text. */
  let lastChunk = '{}'

  function choiceState (index: number): ChoiceState | undefined {
    let state = choices.get(index)
    if (state === undefined && choices.size < MAX_CHOICES) {
      state = { rewriter: newRewriter(), finished: false }
      choices.set(index, state)
    }
    return state
  }

  function releaseChunk (index: number, text: string): string {
    const template = parseTemplate(lastChunk)
    const chunk: Json = { ...template, choices: [{ index, delta: { content: text }, finish_reason: null }] }
    delete chunk.usage
    return serializeData(JSON.stringify(chunk))
  }

  /** Pushes text through a choice's rewriter, keeping the count of holding choices. */
  function pass (state: ChoiceState, text: string, final: boolean): string {
    const wasHolding = state.rewriter.holding
    let out = text.length > 0 ? state.rewriter.push(text) : ''
    if (final) out += state.rewriter.end()
    holding += Number(state.rewriter.holding) - Number(wasHolding)
    return out
  }

  function rewriteChunk (chunk: Json, out: string[]): boolean {
    const list = chunk.choices
    if (!Array.isArray(list)) return false
    let changed = false
    for (const choice of list) {
      if (!isObject(choice) || !isChoiceIndex(choice.index)) continue
      const state = choiceState(choice.index)
      if (state === undefined) continue
      const delta = choice.delta
      const content = isObject(delta) && typeof delta.content === 'string' ? delta.content : undefined
      const finishing = choice.finish_reason !== null && choice.finish_reason !== undefined
      if (content === undefined && !finishing) continue
      const text = pass(state, content ?? '', finishing)
      if (finishing) state.finished = true
      if (content !== undefined) {
        if (text !== content) {
          (delta as Json).content = text
          changed = true
        }
      } else if (text.length > 0) {
        out.push(releaseChunk(choice.index, text))
      }
    }
    return changed
  }

  /** The fast path for `CONTENT_CHUNK`; false sends the event down the general path. */
  function rewriteInPlace (event: EventSourceMessage, match: RegExpExecArray, out: string[]): boolean {
    const [start, end] = (match.indices as RegExpIndicesArray)[2] as [number, number]
    let content: unknown
    try {
      content = JSON.parse(event.data.slice(start, end))
    } catch {
      return false
    }
    const state = choiceState(Number(match[1]))
    if (state === undefined) return false
    lastChunk = event.data
    const text = pass(state, content as string, false)
    out.push(serializeEvent(text === content
      ? event
      : { ...event, data: event.data.slice(0, start) + JSON.stringify(text) + event.data.slice(end) }))
    return true
  }

  function flushAll (out: string[]): void {
    if (holding === 0) return
    for (const [index, state] of choices) {
      const text = pass(state, '', true)
      if (text.length > 0) out.push(releaseChunk(index, text))
    }
  }

  return {
    onEvent (event: EventSourceMessage, out: string[]) {
      // Named events (hermes.tool.progress …) are not chat chunks.
      if (event.event !== undefined && event.event !== 'message') {
        if (!dropNamedEvents) out.push(serializeEvent(event))
        return
      }
      const data = event.data
      if (data === '[DONE]') {
        flushAll(out)
        out.push(serializeEvent(event))
        done = true
        return
      }
      // Fast path: a chunk without `"content"` (role, tool_calls, usage, reasoning) cannot
      // change the text and, with nothing held and no finish, there is nothing to release.
      if (holding === 0 && data.indexOf('"content"') === -1 && !FINISH_SET.test(data)) {
        out.push(serializeEvent(event))
        return
      }
      // Only what looks like one JSON object: anything else goes to the general path,
      // which forwards what it cannot parse untouched.
      const fast = data.length <= FAST_PATH_MAX && data.charCodeAt(0) === 0x7b && data.charCodeAt(data.length - 1) === 0x7d
        ? CONTENT_CHUNK.exec(data)
        : null
      if (fast !== null && rewriteInPlace(event, fast, out)) return
      let chunk: unknown
      try {
        chunk = JSON.parse(data)
      } catch {
        out.push(serializeEvent(event))
        return
      }
      if (!isObject(chunk)) {
        out.push(serializeEvent(event))
        return
      }
      lastChunk = data
      const before: string[] = []
      const changed = rewriteChunk(chunk, before)
      out.push(...before)
      out.push(changed ? serializeEvent({ ...event, data: JSON.stringify(chunk) }) : serializeEvent(event))
    },
    flush: flushAll,
    get done () {
      return done
    },
    get complete () {
      if (choices.size === 0) return false
      for (const state of choices.values()) if (!state.finished) return false
      return true
    }
  }
}
