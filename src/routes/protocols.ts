import { rewriteChatCompletionBody } from '../rewrite/chat-body.js'
import { rewriteResponsesBody } from '../rewrite/responses-body.js'
import type { Rewriter } from '../rewrite/rewriter.js'
import { createChatCompletionsHandler } from '../sse/chat-completions.js'
import type { ChatStreamOptions } from '../sse/chat-completions.js'
import type { EventHandler } from '../sse/event-stream.js'
import { createResponsesHandler } from '../sse/responses.js'

/** How event streams are shaped for the client, the same for every protocol. */
export type StreamOptions = ChatStreamOptions

/** An API whose answers carry model text: where it lives, streamed and not. */
export interface Protocol {
  name: string
  /** Client paths, with and without `/v1` (Open WebUI and the SDKs use either base). */
  paths: readonly string[]
  newHandler: (newRewriter: () => Rewriter, rewriteWhole: (text: string) => string, stream: StreamOptions) => EventHandler
  rewriteBody: (body: string, rewriteWhole: (text: string) => string) => string
}

export const PROTOCOLS: readonly Protocol[] = [
  {
    name: 'chat.completions',
    paths: ['/v1/chat/completions', '/chat/completions'],
    newHandler: (newRewriter, _rewriteWhole, stream) => createChatCompletionsHandler(newRewriter, stream),
    rewriteBody: rewriteChatCompletionBody
  },
  {
    name: 'responses',
    paths: ['/v1/responses', '/responses'],
    // Its named events are the protocol itself: they always pass.
    newHandler: (newRewriter, rewriteWhole) => createResponsesHandler(newRewriter, rewriteWhole),
    rewriteBody: rewriteResponsesBody
  }
]
