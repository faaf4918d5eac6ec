import t from 'tap'
import { createOldestOutMap } from '../src/oldest-out-map.js'

t.test('holds what it is given, up to its bound', async (t) => {
  const map = createOldestOutMap<string, number>(3)
  map.set('a', 1)
  map.set('b', 2)
  map.set('c', 3)
  t.same([map.get('a'), map.get('b'), map.get('c')], [1, 2, 3], 'all three kept')
  t.equal(map.get('d'), undefined, 'an unknown key is undefined')
  t.notOk(map.has('d'), 'and not had')
})

t.test('past its bound the entry added first is forgotten, however often it was read', async (t) => {
  const map = createOldestOutMap<string, number>(2)
  map.set('a', 1)
  map.set('b', 2)
  t.equal(map.get('a'), 1, 'read before the next one comes')
  map.set('c', 3)
  t.notOk(map.has('a'), 'the oldest is out (reading does not keep it)')
  t.ok(map.has('b'), 'the next is kept')
  t.ok(map.has('c'), 'the newest is kept')
  map.set('d', 4)
  t.notOk(map.has('b'), 'then the next oldest')
  t.same([map.get('c'), map.get('d')], [3, 4], 'the two newest remain')
})

t.test('replacing a value forgets nothing', async (t) => {
  const map = createOldestOutMap<string, number>(2)
  map.set('a', 1)
  map.set('b', 2)
  map.set('b', 20)
  t.same([map.get('a'), map.get('b')], [1, 20], 'both kept, the value replaced')
})

t.test('a deleted entry frees its place', async (t) => {
  const map = createOldestOutMap<string, number>(2)
  map.set('a', 1)
  map.set('b', 2)
  t.ok(map.delete('a'), 'deleted')
  t.notOk(map.delete('a'), 'a second delete finds nothing')
  map.set('c', 3)
  t.same([map.get('b'), map.get('c')], [2, 3], 'room for one more without forgetting')
})

t.test('a bound of one keeps only the newest', async (t) => {
  const map = createOldestOutMap<number, string>(1)
  map.set(1, 'one')
  map.set(2, 'two')
  t.notOk(map.has(1), 'the first is out')
  t.equal(map.get(2), 'two', 'the newest is in')
})
