import t from 'tap'
import { defaultPublicUrl, redactUrl } from '../../src/config/urls.js'

t.test('redactUrl hides userinfo and nothing else', async t => {
  const cases: Array<[string | URL, string]> = [
    ['http://user:hunter2@h:1/v1', 'http://***@h:1/v1'],
    ['https://hunter2@h/v1', 'https://***@h/v1'],
    ['http://u:p@ss:hunter2@h/x', 'http://***@h/x'],
    ['http:u:hunter2@h/v1', 'http:***@h/v1'],
    ['http:\\\\u:hunter2@h', 'http:\\\\***@h'],
    ['http://h/path@not-userinfo', 'http://h/path@not-userinfo'],
    ['http://h:1/v1?a=b@c', 'http://h:1/v1?a=b@c'],
    ['not a url', 'not a url'],
    [new URL('http://user:hunter2@h/v1'), 'http://***@h/v1'],
    [new URL('http://h/v1'), 'http://h/v1']
  ]
  for (const [input, expected] of cases) {
    t.equal(redactUrl(input), expected, `redactUrl(${String(input)})`)
  }
})

t.test('defaultPublicUrl turns a listening address into a browser URL', async t => {
  const cases: Array<[string, number, string]> = [
    ['127.0.0.1', 8090, 'http://127.0.0.1:8090'],
    ['example.org', 80, 'http://example.org:80'],
    ['0.0.0.0', 8090, 'http://localhost:8090'],
    ['::', 8090, 'http://localhost:8090'],
    ['[::]', 8090, 'http://localhost:8090'],
    ['0:0:0:0:0:0:0:0', 1, 'http://localhost:1'],
    ['', 8090, 'http://localhost:8090'],
    ['::1', 8090, 'http://[::1]:8090'],
    ['[::1]', 8090, 'http://[::1]:8090'],
    ['fe80::1', 5, 'http://[fe80::1]:5']
  ]
  for (const [host, port, expected] of cases) {
    t.equal(defaultPublicUrl(host, port), expected, `defaultPublicUrl(${JSON.stringify(host)}, ${port})`)
  }
})
