// node-postgres against a Strata server, as applications use it.
// Usage: node node_pg.js PORT (needs `npm install pg` beside this file).
// Exits non-zero on the first difference from what PostgreSQL 15 returns.
const assert = require('assert');
const { Client, Pool } = require('pg');
const config = { host: '127.0.0.1', port: +process.argv[2], user: 'strata', database: 'strata' };

(async () => {
  const client = new Client(config);
  await client.connect();
  await client.query('CREATE TABLE nodepg (id BIGINT PRIMARY KEY, name TEXT, amt NUMERIC(12,2), at TIMESTAMPTZ, j JSONB, ok BOOLEAN)');
  await client.query('INSERT INTO nodepg VALUES ($1, $2, $3, $4, $5, $6)', [1, 'ann', '10.50', new Date('2026-11-20T12:00:00Z'), { a: 1 }, true]);
  const inserted = await client.query('INSERT INTO nodepg VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, amt', [2, 'bob', 3.25, '2026-11-21T00:00:00Z', JSON.stringify([1, 2]), false]);
  assert.deepStrictEqual(inserted.rows, [{ id: '2', amt: '3.25' }]);
  const rows = (await client.query('SELECT * FROM nodepg ORDER BY id')).rows;
  assert.deepStrictEqual(rows.map(r => [r.id, r.name, r.amt, r.at.toISOString(), r.j, r.ok]), [
    ['1', 'ann', '10.50', '2026-11-20T12:00:00.000Z', { a: 1 }, true],
    ['2', 'bob', '3.25', '2026-11-21T00:00:00.000Z', [1, 2], false],
  ]);
  for (const id of [2, 1]) {
    const named = await client.query({ name: 'byid', text: 'SELECT name FROM nodepg WHERE id = $1', values: [id] });
    assert.strictEqual(named.rows[0].name, id === 1 ? 'ann' : 'bob');
  }
  // INT results are numbers, BIGINT strings, as node-postgres reads PostgreSQL's.
  const multi = await client.query('SELECT 1::int AS a; SELECT 2::bigint AS b');
  assert.deepStrictEqual(multi.map(r => r.rows), [[{ a: 1 }], [{ b: '2' }]]);
  // An integer literal is an INT, as in PostgreSQL; 2^31 is a BIGINT.
  const literals = await client.query('SELECT 1 AS a, 1 + 1 AS b, 2147483648 AS c');
  assert.deepStrictEqual(literals.rows, [{ a: 1, b: 2, c: '2147483648' }]);
  await assert.rejects(client.query('SELECT * FROM nope'), e => e.code === '42P01');
  assert.deepStrictEqual((await client.query("SELECT j->>'a' AS a FROM nodepg WHERE j @> $1", ['{"a":1}'])).rows, [{ a: '1' }]);
  await client.query('BEGIN');
  await client.query('UPDATE nodepg SET amt = amt * 2 WHERE id = $1', [1]);
  await client.query('ROLLBACK');
  assert.deepStrictEqual((await client.query('SELECT amt FROM nodepg WHERE id = 1')).rows, [{ amt: '10.50' }]);
  const pool = new Pool({ ...config, max: 4 });
  const sums = await Promise.all([1, 2, 3, 4, 5, 6].map(i => pool.query('SELECT $1::int + 1::int AS v', [i]).then(r => r.rows[0].v)));
  assert.deepStrictEqual(sums, [2, 3, 4, 5, 6, 7]);
  await pool.end();
  await client.end();
  console.log('ok node-postgres');
})().catch(e => { console.error(e); process.exit(1); });
