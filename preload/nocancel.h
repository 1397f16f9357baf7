/* The shim's own system calls that are cancellation points (open, read,
 * write, close, fallocate...) with the calling thread's cancellation off
 * (shim, every stage). A thread of the program's with a deferred cancel
 * pending dies only at a cancellation point of its own: never inside
 * malloc (which is none), where the shim opens /proc/self/statm for the
 * RSS, claims a chunk, grows or reopens the trace, makes a fork child's,
 * writes a line or ends the trace. Only on those slow paths: no cost per
 * event. A thread of asynchronous cancellation type with a cancel pending
 * can be cancelled when the state is put back, as anywhere else. */
#ifndef HW_PRELOAD_NOCANCEL_H
#define HW_PRELOAD_NOCANCEL_H

#include <pthread.h>

static inline int hw_cancel_off(void)
{
	int old = PTHREAD_CANCEL_DISABLE;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	return old;
}

static inline void hw_cancel_restore(int old)
{
	if (old != PTHREAD_CANCEL_DISABLE)
		pthread_setcancelstate(old, &old);
}

#endif
