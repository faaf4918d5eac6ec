// The `within` helper of test/fixtures/within.ts: the waits that use it must be able to fail.
import t from 'tap'
import { within } from './fixtures/within.js'

t.test('a promise that settles in time gives its value', async (t) => {
  t.equal(await within(Promise.resolve(42), 1000, 'the answer'), 42, 'the value passes through')
  await t.rejects(within(Promise.reject(new Error('boom')), 1000, 'the answer'), new Error('boom'), 'a rejection passes through unchanged')
})

t.test('a promise that never settles is rejected with what was awaited', async (t) => {
  const started = Date.now()
  await t.rejects(within(new Promise(() => {}), 50, 'the upstream request closing'), new Error('the upstream request closing: did not happen within 50 ms'), 'the message names the wait and the limit')
  t.ok(Date.now() - started >= 45, 'not before the limit')
})
