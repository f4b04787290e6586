// A real BullMQ Worker for the bullmq source's tests: default concurrency (1), jobs that sleep
// `data.seconds`. Its `name` option (BullMQ writes it into each job it takes, field `pb`) is
// EBB_TEST_WORKER_NAME, as a pod would set it from its own name.
//
// Environment: EBB_TEST_REDIS_URL, EBB_TEST_QUEUE, EBB_TEST_PREFIX, EBB_TEST_WORKER_NAME, and
// EBB_TEST_LOCK_MS: lockDuration and stalledInterval (both 30000 by default in BullMQ), short
// for a short test of what happens after a SIGKILL.
'use strict';
const { Worker } = require('bullmq');
const IORedis = require('ioredis');

const connection = new IORedis(process.env.EBB_TEST_REDIS_URL, { maxRetriesPerRequest: null });
const opts = { connection, prefix: process.env.EBB_TEST_PREFIX, name: process.env.EBB_TEST_WORKER_NAME };
if (process.env.EBB_TEST_LOCK_MS) {
  opts.lockDuration = Number(process.env.EBB_TEST_LOCK_MS);
  opts.stalledInterval = Number(process.env.EBB_TEST_LOCK_MS);
}
const worker = new Worker(
  process.env.EBB_TEST_QUEUE,
  (job) => new Promise((resolve) => setTimeout(resolve, job.data.seconds * 1000)),
  opts,
);
worker.on('ready', () => console.log('ready'));
worker.on('error', (error) => console.error(error));
