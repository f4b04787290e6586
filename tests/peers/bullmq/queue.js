// BullMQ's own Queue client, for the bullmq source's tests (crates/sources/tests/bullmq_source.rs).
//
//   node queue.js add <count> <seconds> [priority] [delay ms]   adds `slow` jobs, prints their ids
//   node queue.js pause | resume
//
// Environment: EBB_TEST_REDIS_URL, EBB_TEST_QUEUE, EBB_TEST_PREFIX (BullMQ's `prefix`).
'use strict';
const { Queue } = require('bullmq');
const IORedis = require('ioredis');

async function main() {
  const [command, count, seconds, priority, delay] = process.argv.slice(2);
  const connection = new IORedis(process.env.EBB_TEST_REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue(process.env.EBB_TEST_QUEUE, { connection, prefix: process.env.EBB_TEST_PREFIX });
  if (command === 'add') {
    const opts = {};
    if (priority && priority !== '0') opts.priority = Number(priority);
    if (delay && delay !== '0') opts.delay = Number(delay);
    for (let i = 0; i < Number(count); i++) {
      const job = await queue.add('slow', { seconds: Number(seconds) }, opts);
      console.log(job.id);
    }
  } else if (command === 'pause') {
    await queue.pause();
  } else if (command === 'resume') {
    await queue.resume();
  } else {
    throw new Error(`unknown command ${command}: add, pause or resume`);
  }
  await queue.close();
  await connection.quit();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
