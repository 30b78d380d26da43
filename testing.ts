/**
 * `fraisier/testing`: the test doubles, kept out of the main entry. A plugin's or a deploy script's unit
 * tests drive a strategy or a plugin through them in milliseconds:
 * - `RecordingExecutor` records every command a provider or plugin sends to a host and answers from canned
 *   replies, so a test can assert the exact commands and run a failure path;
 * - `FakeClock` makes sleeps advance time at once, so retries and pauses cost nothing.
 */
export { RecordingExecutor, type Reply } from './core/exec/recording.js';
export { FakeClock } from './core/clock.js';
