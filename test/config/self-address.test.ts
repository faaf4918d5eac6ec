import t from 'tap'
import {
  canonicalHost, formatAddress, isLoopbackHost, isWildcardHost, machineAddresses, reachesListener, selfUpstreamMessage, urlPort
} from '../../src/config/self-address.js'

t.test('canonicalHost writes one address one way', async t => {
  const cases: Array<[string, string]> = [
    ['127.0.0.1', '127.0.0.1'],
    ['127.1', '127.0.0.1'],
    ['2130706433', '127.0.0.1'],
    ['LOCALHOST', 'localhost'],
    ['::1', '::1'],
    ['[::1]', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['[::ffff:7f00:1]', '127.0.0.1'],
    ['0.0.0.0', '0.0.0.0'],
    ['::', '::'],
    ['fe80::1%eth0', 'fe80::1%eth0'],
    ['', '']
  ]
  for (const [host, expected] of cases) t.equal(canonicalHost(host), expected, `${JSON.stringify(host)} → ${expected}`)
})

t.test('wildcard and loopback hosts', async t => {
  for (const host of ['0.0.0.0', '::', '[::]', '0:0:0:0:0:0:0:0', '']) t.ok(isWildcardHost(host), `${JSON.stringify(host)} is every address`)
  for (const host of ['127.0.0.1', '::1', 'localhost']) t.notOk(isWildcardHost(host), `${host} is not`)
  for (const host of ['127.0.0.1', '127.0.1.2', 'localhost', 'app.localhost', '::1', '[::1]', '::ffff:127.0.0.1']) t.ok(isLoopbackHost(host), `${host} is loopback`)
  for (const host of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'example.org', 'localhost.example.org']) t.notOk(isLoopbackHost(host), `${host} is not`)
})

t.test('urlPort falls back to the scheme\'s port', async t => {
  t.equal(urlPort(new URL('http://h/v1')), 80, 'http')
  t.equal(urlPort(new URL('https://h/v1')), 443, 'https')
  t.equal(urlPort(new URL('http://h:8090/v1')), 8090, 'written')
})

t.test('reachesListener: an upstream at the listening address, however it is written', async t => {
  const lan = ['192.168.1.20', 'fe80::1']
  const cases: Array<[string, string, number, boolean, string]> = [
    ['http://127.0.0.1:8090/v1', '127.0.0.1', 8090, true, 'the same address'],
    ['http://localhost:8090/v1', '127.0.0.1', 8090, true, 'localhost for 127.0.0.1'],
    ['http://127.0.0.1:8090/v1', 'localhost', 8090, true, '127.0.0.1 for localhost'],
    ['http://[::1]:8090/v1', 'localhost', 8090, true, '::1 for localhost'],
    ['http://0.0.0.0:8090/v1', '127.0.0.1', 8090, true, '0.0.0.0 connects to this machine'],
    ['http://127.0.0.1:8090/v1', '0.0.0.0', 8090, true, 'a wildcard listener answers on loopback'],
    ['http://localhost:8090/v1', '::', 8090, true, 'and on localhost'],
    ['http://192.168.1.20:8090/v1', '0.0.0.0', 8090, true, 'and on the machine\'s own addresses'],
    ['http://[fe80::1]:8090/v1', '::', 8090, true, 'IPv6 ones too'],
    ['http://127.1:8090/v1', '127.0.0.1', 8090, true, 'a short IPv4 form'],
    ['http://imagegate:80/v1', 'imagegate', 80, true, 'the same name'],
    ['http://127.0.0.1/v1', '127.0.0.1', 80, true, 'the scheme\'s default port'],
    ['http://127.0.0.1:8642/v1', '127.0.0.1', 8090, false, 'another port'],
    ['http://192.168.1.99:8090/v1', '0.0.0.0', 8090, false, 'another machine'],
    ['http://10.0.0.5:8090/v1', '127.0.0.1', 8090, false, 'another address'],
    ['http://127.0.0.1:8090/v1', '192.168.1.20', 8090, false, 'a listener on one address only is not reached on loopback'],
    ['http://agent:8090/v1', '0.0.0.0', 8090, false, 'a name it cannot see through (caught per request instead)']
  ]
  for (const [upstream, host, port, expected, label] of cases) {
    t.equal(reachesListener(new URL(upstream), { host, port }, lan), expected, `${label}: ${upstream} vs ${host}:${port}`)
  }
  t.equal(reachesListener(new URL('http://192.168.1.20:8090/v1'), { host: '0.0.0.0', port: 8090 }), false, 'without a list of the machine\'s addresses, only loopback counts')
})

t.test('formatAddress and the message', async t => {
  t.equal(formatAddress({ host: '0.0.0.0', port: 8090 }), '0.0.0.0:8090', 'IPv4')
  t.equal(formatAddress({ host: '::', port: 8090 }), '[::]:8090', 'IPv6 in brackets')
  t.equal(formatAddress({ host: 'localhost', port: 1 }), 'localhost:1', 'a name')
  t.equal(selfUpstreamMessage(new URL('http://u:pw-SECRET@127.0.0.1:8090/v1'), { host: '0.0.0.0', port: 8090 }),
    '"http://***@127.0.0.1:8090/v1" is imagegate\'s own address (it listens on 0.0.0.0:8090), so every request would be forwarded to itself; give the agent backend\'s URL, e.g. "http://127.0.0.1:8642/v1"',
    'names both addresses, without the password')
})

t.test('machineAddresses lists this machine\'s interfaces', async t => {
  t.ok(machineAddresses().includes('127.0.0.1'), 'loopback among them')
})
