import type { EventSourceMessage } from 'eventsource-parser'

/**
 * Writes one parsed event back in SSE wire format (WHATWG HTML 9.2.6). Line endings are
 * normalized to LF and one `data:` line is written per data line, which every SSE reader
 * (browsers, Open WebUI, the OpenAI SDKs) reassembles to the same event.
 */
export function serializeEvent (event: EventSourceMessage): string {
  let out = ''
  if (event.event !== undefined) out += `event: ${event.event}\n`
  if (event.id !== undefined) out += `id: ${event.id}\n`
  return out + serializeData(event.data)
}

/** `data:` lines for one payload, followed by the blank line that dispatches the event. */
export function serializeData (data: string): string {
  if (data.indexOf('\n') === -1) return `data: ${data}\n\n`
  return `data: ${data.split('\n').join('\ndata: ')}\n\n`
}

export function serializeComment (comment: string): string {
  return `: ${comment}\n\n`
}
