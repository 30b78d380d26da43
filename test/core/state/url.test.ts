/**
 * PostgreSQL connection strings are shown only with their password hidden (bug 7): every form a user
 * may write, and a placeholder for what cannot be parsed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { postgresUrlProblem, redactUrl, urlSecrets } from '../../../core/state/url.js';
import { redact, registerSecret } from '../../../core/secret.js';

/** [connection string, what redactUrl must show, the password(s) that must not appear] */
const SHOWN: [string, string, string[]][] = [
  ['postgres://deploy:pw-userinfo1@db:5432/fraisier', 'postgres://deploy:***@db:5432/fraisier', ['pw-userinfo1']],
  ['postgresql://deploy:pw-userinfo2@db/fraisier?sslmode=require', 'postgresql://deploy:***@db/fraisier?sslmode=require', ['pw-userinfo2']],
  ['postgres://deploy@db/fraisier?password=pw-query3&sslmode=require', 'postgres://deploy@db/fraisier?password=***&sslmode=require', ['pw-query3']],
  ['postgres://deploy:pw-both4@db/fraisier?sslpassword=pw-ssl4', 'postgres://deploy:***@db/fraisier?sslpassword=***', ['pw-both4', 'pw-ssl4']],
  ['postgresql:///fraisier?host=/run/postgresql&password=pw-socket5', 'postgresql:///fraisier?host=/run/postgresql&password=***', ['pw-socket5']],
  ['postgres://:pw-nouser6@db/fraisier', 'postgres://:***@db/fraisier', ['pw-nouser6']],
  ['postgres://deploy:pw%40enc%2F7@db/fraisier', 'postgres://deploy:***@db/fraisier', ['pw%40enc%2F7', 'pw@enc/7']],
  // an unencoded @ in the password: the URL parser takes the last @, the whole password is hidden
  ['postgres://deploy:pw@at8@db/fraisier', 'postgres://deploy:***@db/fraisier', ['pw@at8', 'at8']],
  ['  postgres://deploy:pw-spaces9@db/fraisier  ', 'postgres://deploy:***@db/fraisier', ['pw-spaces9']],
  ['POSTGRES://deploy:pw-upper10@db/fraisier', 'postgres://deploy:***@db/fraisier', ['pw-upper10']],
  ['postgres://deploy:pw-space 25@db/fraisier', 'postgres://deploy:***@db/fraisier', ['pw-space', '25']],
  ['mysql://root:pw-mysql11@db/x', 'mysql://root:***@db/x', ['pw-mysql11']],
  ['postgres://db/fraisier?PassWord=pw-case12', 'postgres://db/fraisier?PassWord=***', ['pw-case12']],
  // libpq key=value conninfo strings
  ['host=db user=deploy password=pw-conninfo13 dbname=fraisier', 'host=db user=deploy password=*** dbname=fraisier', ['pw-conninfo13']],
  ["host=db password='pw quoted\\'14' dbname=fraisier", 'host=db password=*** dbname=fraisier', ['pw quoted', 'quoted']],
  ['host = db password = pw-spaced15', 'host=db password=***', ['pw-spaced15']],
];

/** [connection string, words of the reason, the password that must not appear] */
const HIDDEN: [string, RegExp, string][] = [
  ['postgres//deploy:pw-noscheme16@db/fraisier', /scheme is not followed by ":\/\/"/, 'pw-noscheme16'],
  ['postgres:/deploy:pw-oneslash17@db/fraisier', /scheme is not followed/, 'pw-oneslash17'],
  ['postgres:deploy:pw-noslash18@db/fraisier', /scheme is not followed/, 'pw-noslash18'],
  ['postgresql//deploy:pw-noscheme19@db/fraisier', /scheme is not followed/, 'pw-noscheme19'],
  ['deploy:pw-bare20@db/fraisier', /neither a URL nor a key=value/, 'pw-bare20'],
  ['postgres://deploy:pw/slash21@db/fraisier', /does not parse as a URL.*%2F/, 'pw/slash21'],
  ['postgres://deploy:12?pw-question22@db/fraisier', /"@" after the host/, 'pw-question22'],
  ['postgres://deploy:12#pw-hash23@db/fraisier', /"@" after the host/, 'pw-hash23'],
  ['postgres://deploy:pw-multihost24@h1:5432,h2:5432/fraisier', /does not parse as a URL/, 'pw-multihost24'],
  ['pw-just-a-password26', /neither a URL nor a key=value/, 'pw-just-a-password26'],
  ["host=db password='pw-unclosed27", /neither a URL nor a key=value/, 'pw-unclosed27'],
];

test('every parseable form is shown with each password as ***', () => {
  for (const [url, shown, passwords] of SHOWN) {
    const out = redactUrl(url);
    assert.is(out, shown, url);
    for (const p of passwords) assert.not.ok(out.includes(p), `${url} shows ${p}`);
  }
});

test('what cannot be parsed is never printed: a placeholder with the reason', () => {
  for (const [url, reason, password] of HIDDEN) {
    const out = redactUrl(url);
    assert.ok(out.startsWith('(connection string hidden: '), `${url} → ${out}`);
    assert.match(out, reason, url);
    assert.not.ok(out.includes(password), `${url} shows ${password}`);
    assert.not.ok(out.includes('deploy'), `${url}: the placeholder shows part of the text`);
  }
});

test('postgresUrlProblem names the malformed scheme and the stray @', () => {
  assert.is(postgresUrlProblem('postgres://deploy:pw@db/fraisier'), null);
  assert.is(postgresUrlProblem('postgres://deploy@db/fraisier?password=pw'), null);
  assert.is(postgresUrlProblem('postgres//deploy:pw@db/fraisier'), 'it must start with postgres:// or postgresql://');
  assert.is(postgresUrlProblem('postgres:/deploy:pw@db/fraisier'), 'it must start with postgres:// or postgresql://');
  assert.is(postgresUrlProblem('postgres://deploy:12?x@db/fraisier'), 'an "@" after the host (percent-encode "@" in the password as %40)');
  assert.is(postgresUrlProblem('mysql://root:pw@db/x'), 'the scheme is "mysql", not postgres or postgresql');
  assert.is(postgresUrlProblem('host=db password=x'), 'not a URL');
});

test('urlSecrets finds the userinfo, query and conninfo passwords, as written and decoded', () => {
  assert.equal(urlSecrets('postgres://u:p%40ss@db/x?password=q1&sslpassword=q2'), ['p%40ss', 'p@ss', 'q1', 'q2']);
  assert.equal(urlSecrets("host=db password='a b' dbname=x"), ['a b']);
  assert.equal(urlSecrets('postgres//u:pw@db/x'), []);
});

test('redact hides URL passwords and password= values by their shape, even unregistered', () => {
  const cases: [string, string][] = [
    ['cannot list https://deploy:gitpw-shape1@git.example/app.git from h1', 'cannot list https://deploy:[REDACTED]@git.example/app.git from h1'],
    ['postgres//deploy:pw-shape2@db/x refused', 'postgres//deploy:[REDACTED]@db/x refused'],
    ['postgres:/deploy:pw-shape3@db/x', 'postgres:/deploy:[REDACTED]@db/x'],
    ['postgres://u@db/x?password=pw-shape4&sslmode=require', 'postgres://u@db/x?password=[REDACTED]&sslmode=require'],
    ["host=db password='pw shape5' dbname=x", 'host=db password=[REDACTED] dbname=x'],
    ['PGPASSWORD=pw-shape6 pg_dump', 'PGPASSWORD=[REDACTED] pg_dump'],
    // already hidden forms, and text that only looks like a URL, stay as they are
    ['postgres://deploy:***@db/x', 'postgres://deploy:***@db/x'],
    ['password=*** given', 'password=*** given'],
    ['GET http://localhost:8000/health: 500', 'GET http://localhost:8000/health: 500'],
    ['git@github.com:org/repo.git', 'git@github.com:org/repo.git'],
    ['e.g. postgres://user:password@host:5432/db', 'e.g. postgres://user:password@host:5432/db'],
    ['e.g. postgres://deploy:${PGPASSWORD}@db/x', 'e.g. postgres://deploy:${PGPASSWORD}@db/x'],
    ['pg_dump "password=$PGPASS"', 'pg_dump "password=$PGPASS"'],
  ];
  for (const [text, want] of cases) assert.is(redact(text), want);
});

test('a registered password is hidden in its percent-encoded form too', () => {
  registerSecret('pw@with/specials-url');
  assert.is(redact('git clone https://x/pw%40with%2Fspecials-url'), 'git clone https://x/[REDACTED]');
  assert.is(redact('said pw@with/specials-url'), 'said [REDACTED]');
});

test.run();
