import { rewriteChatCompletionBody } from '../rewrite/chat-body.js'
import { rewriteResponsesBody } from '../rewrite/responses-body.js'
import type { RewriteSession } from '../rewrite/session.js'
import { createChatCompletionsHandler } from '../sse/chat-completions.js'
import type { ChatStreamOptions } from '../sse/chat-completions.js'
import type { EventHandler } from '../sse/event-stream.js'
import { createResponsesHandler } from '../sse/responses.js'

/** How event streams are shaped for the client, the same for every protocol. */
type StreamOptions = ChatStreamOptions

/** An API whose answers carry model text: where it lives, streamed and not, side by side. */
export interface Protocol {
  name: string
  /** Client paths, with and without `/v1` (Open WebUI and the SDKs use either base). */
  paths: readonly string[]
  /** The transform of a streamed answer. */
  newHandler: (session: RewriteSession, stream: StreamOptions) => EventHandler
  /** The transform of a whole (`stream: false`) answer. */
  rewriteBody: (body: string, session: RewriteSession) => string
}

export const PROTOCOLS: readonly Protocol[] = [
  {
    name: 'chat.completions',
    paths: ['/v1/chat/completions', '/chat/completions'],
    newHandler: (session, stream) => createChatCompletionsHandler(session.newRewriter, stream),
    rewriteBody: (body, session) => rewriteChatCompletionBody(body, (text) => session.rewriteWhole(text))
  },
  {
    name: 'responses',
    paths: ['/v1/responses', '/responses'],
    // Its named events are the protocol itself: they always pass. The full texts the
    // closing events repeat were counted as deltas already.
    newHandler: (session) => createResponsesHandler(session.newRewriter, (text) => session.rewriteWhole(text, { repeat: true })),
    rewriteBody: (body, session) => rewriteResponsesBody(body, (text) => session.rewriteWhole(text))
  }
]
