import t from 'tap'
import { rewriteChatCompletionBody } from '../../src/rewrite/chat-body.js'
import { createRewriter } from '../../src/rewrite/rewriter.js'
import type { Resolve } from '../../src/rewrite/ports.js'

// Stands in for a rewriter: every `PATH` becomes `URL`.
const swap = (text: string): string => text.replaceAll('PATH', 'URL')

t.test('message content is rewritten, everything else kept', async t => {
  const cases: Array<[string, string, unknown]> = [
    ['string content',
      '{"choices": [{"index": 0, "message": {"role": "assistant", "content": "see PATH"}, "finish_reason": "stop"}], "usage": {"total_tokens": 3}}',
      { choices: [{ index: 0, message: { role: 'assistant', content: 'see URL' }, finish_reason: 'stop' }], usage: { total_tokens: 3 } }],
    ['several choices, each on its own',
      '{"choices": [{"index": 0, "message": {"content": "PATH a"}}, {"index": 1, "message": {"content": "b"}}, {"index": 2, "message": {"content": "c PATH"}}]}',
      { choices: [{ index: 0, message: { content: 'URL a' } }, { index: 1, message: { content: 'b' } }, { index: 2, message: { content: 'c URL' } }] }],
    ['text parts of array content; other parts untouched',
      '{"choices": [{"message": {"content": [{"type": "text", "text": "PATH"}, {"type": "image_url", "image_url": {"url": "PATH"}}, {"type": "text", "text": "no"}, "PATH", {"type": "text", "text": 5}]}}]}',
      { choices: [{ message: { content: [{ type: 'text', text: 'URL' }, { type: 'image_url', image_url: { url: 'PATH' } }, { type: 'text', text: 'no' }, 'PATH', { type: 'text', text: 5 }] } }] }],
    ['tool calls and odd choices are skipped',
      '{"choices": [null, 7, {"delta": {"content": "PATH"}}, {"message": null}, {"message": {"content": null, "tool_calls": [{"function": {"arguments": "PATH"}}]}}, {"message": {"content": "PATH"}}]}',
      { choices: [null, 7, { delta: { content: 'PATH' } }, { message: null }, { message: { content: null, tool_calls: [{ function: { arguments: 'PATH' } }] } }, { message: { content: 'URL' } }] }],
    ['non-ASCII escapes decode to the same text',
      '{"choices": [{"message": {"content": "caf\\u00e9 PATH \\ud83c\\udf4e"}}]}',
      { choices: [{ message: { content: 'café URL 🍎' } }] }]
  ]
  for (const [label, body, expected] of cases) {
    const out = rewriteChatCompletionBody(body, swap)
    t.same(JSON.parse(out), expected, `${label}: rewritten`)
  }
})

t.test('a body with nothing to rewrite comes back byte for byte', async t => {
  const cases: Array<[string, string]> = [
    ['invalid JSON', '{"choices": [{"message": {"content": "PATH"'],
    ['empty', ''],
    ['a JSON string', '"PATH"'],
    ['null', 'null'],
    ['an array', '[{"choices": [{"message": {"content": "PATH"}}]}]'],
    ['not a completion', '{"object": "list", "data": [{"content": "PATH"}]}'],
    ['choices not a list', '{"choices": {"message": {"content": "PATH"}}}'],
    ['no reference, Python layout and escapes', '{"id": "c", "choices": [{"index": 0, "message": {"role": "assistant", "content": "caf\\u00e9"}, "finish_reason": "stop"}], "created": 1.0}'],
    ['big numbers survive', '{"created": 12345678901234567890, "choices": [{"message": {"content": "ok"}}]}']
  ]
  for (const [label, body] of cases) {
    t.equal(rewriteChatCompletionBody(body, swap), body, `${label}: unchanged`)
  }
})

t.test('the rewrite sees each text whole', async t => {
  const seen: string[] = []
  const body = '{"choices": [{"message": {"content": "a\\nb"}}, {"message": {"content": [{"type": "text", "text": "c"}, {"type": "text", "text": "d"}]}}]}'
  rewriteChatCompletionBody(body, (text) => { seen.push(text); return text })
  t.same(seen, ['a\nb', 'c', 'd'], 'one call per string content or text part, in order')
})

t.test('with the real rewriter a MEDIA tag becomes an image', async t => {
  const resolve: Resolve = (dest) => dest === '/cache/a.png' ? { url: 'http://gate/images/a.png', name: 'a.png', kind: 'image' } : undefined
  const body = '{"choices": [{"index": 0, "message": {"content": "Done.\\n\\nMEDIA:/cache/a.png\\n\\nMEDIA:/cache/b.png"}}]}'
  const out = rewriteChatCompletionBody(body, (text) => {
    const rewriter = createRewriter({ resolve })
    return rewriter.push(text) + rewriter.end()
  })
  t.same(JSON.parse(out), { choices: [{ index: 0, message: { content: 'Done.\n\n![a.png](http://gate/images/a.png)\n\nMEDIA:/cache/b.png' } }] }, 'the known file is linked, the unknown one kept')
})
