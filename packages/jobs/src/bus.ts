import { EventEmitter } from 'node:events';
import type { JobEvent, QueueName } from '@cvopt/core';

/**
 * In-process signals between the job service and workers of the same process, so an embedded worker starts a
 * job the moment it is submitted and stops it the moment it is cancelled. Other processes learn the same
 * through the store (polling, heartbeats) or Redis; the bus only makes the local case fast.
 */
class LocalBus extends EventEmitter {
  event(e: JobEvent): void {
    this.emit('event', e);
  }
  wake(queue: QueueName): void {
    this.emit('wake', queue);
  }
  cancelled(id: string): void {
    this.emit('cancel', id);
  }
}

export const localBus = new LocalBus();
localBus.setMaxListeners(0);
