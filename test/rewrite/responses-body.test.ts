import t from 'tap'
import { rewriteResponseObject, rewriteResponsesBody } from '../../src/rewrite/responses-body.js'

// Stands in for a rewriter: every `PATH` becomes `URL`.
const swap = (text: string): string => text.replaceAll('PATH', 'URL')

t.test('output text and output_text are rewritten, everything else kept', async t => {
  const body = JSON.stringify({
    id: 'resp_1',
    object: 'response',
    output: [
      { type: 'reasoning', summary: [{ type: 'summary_text', text: 'PATH' }] },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'see PATH', annotations: [] }, { type: 'refusal', refusal: 'PATH' }] }
    ],
    output_text: 'see PATH',
    usage: { total_tokens: 3 }
  })
  t.same(JSON.parse(rewriteResponsesBody(body, swap)), {
    id: 'resp_1',
    object: 'response',
    output: [
      { type: 'reasoning', summary: [{ type: 'summary_text', text: 'PATH' }] },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'see URL', annotations: [] }, { type: 'refusal', refusal: 'PATH' }] }
    ],
    output_text: 'see URL',
    usage: { total_tokens: 3 }
  }, 'only the output text changed')
})

t.test('a body with nothing to rewrite comes back byte for byte', async t => {
  const cases: Array<[string, string]> = [
    ['invalid JSON', '{"output": [{"content": [{"type": "output_text", "text": "PATH"'],
    ['empty', ''],
    ['a JSON string', '"PATH"'],
    ['null', 'null'],
    ['an array', '[{"output_text": "PATH"}]'],
    ['not a response', '{"object": "list", "data": [{"text": "PATH"}]}'],
    ['text without a reference, spacing kept', '{ "output_text" : "plain",\n  "output": [{"content": [{"type": "output_text", "text": "plain"}]}] }']
  ]
  for (const [label, body] of cases) t.equal(rewriteResponsesBody(body, swap), body, label)
})

t.test('response objects: output_text parts and the convenience field, nothing else', async (t) => {
  const body = { id: 'r', output: [{ type: 'message', content: [{ type: 'output_text', text: 'PATH' }, { type: 'refusal', refusal: 'PATH' }] }, 'junk'], output_text: 'PATH' }
  t.ok(rewriteResponseObject(body, swap), 'changed')
  t.equal((body.output[0] as any).content[0].text, 'URL', 'output text part')
  t.equal((body.output[0] as any).content[1].refusal, 'PATH', 'other part types untouched')
  t.equal(body.output_text, 'URL', 'the convenience field')
  t.notOk(rewriteResponseObject({ output: [{ content: 'x' }] }, swap), 'nothing to change')
})
