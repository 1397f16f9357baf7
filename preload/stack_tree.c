/* Per-thread stack tree (shim, stacks stage): open addressing over mmap'd
 * memory, no lock because only the owning thread touches its table. */
#include "stack_tree.h"

#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

#include "heapwise/compiler.h"
#include "heapwise/trace_format.h"
#include "heapwise/varint.h"
#include "modules.h"
#include "tracker.h"

static _Atomic uint32_t g_next_node = 1;

static uint64_t hash(uint32_t parent, uint64_t frame)
{
	uint64_t h = frame * 0x9e3779b97f4a7c15ull ^ ((uint64_t)parent * 0xc2b2ae3d27d4eb4full);
	return h ^ (h >> 29);
}

static bool grow(struct stack_tree *t)
{
	uint32_t cap = t->slots ? (t->mask + 1) * 2 : 1024;
	size_t bytes = (size_t)cap * sizeof(struct stack_tree_entry);
	struct stack_tree_entry *s =
		mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s == MAP_FAILED)
		return false;
	if (t->slots) {
		for (uint32_t i = 0; i <= t->mask; i++) {
			struct stack_tree_entry *e = &t->slots[i];
			if (!e->id)
				continue;
			uint64_t j = hash(e->parent, e->frame) & (cap - 1);
			while (s[j].id)
				j = (j + 1) & (cap - 1);
			s[j] = *e;
		}
		munmap(t->slots, (size_t)(t->mask + 1) * sizeof(struct stack_tree_entry));
	}
	t->slots = s;
	t->mask = cap - 1;
	return true;
}

uint32_t stack_tree_intern(struct thread_state *ts, uint32_t parent, int frame_kind,
			   uint64_t frame)
{
	struct stack_tree *t = &ts->tree;
	/* The frame kind lives in the top bits so a Python frame never equals
	 * a native one with the same value. */
	uint64_t key = frame ^ ((uint64_t)frame_kind << 60);
	uint64_t j = 0;
	if (HW_LIKELY(t->slots)) {
		j = hash(parent, key) & t->mask;
		for (;;) {
			struct stack_tree_entry *e = &t->slots[j];
			if (!e->id)
				break;
			if (e->frame == key && e->parent == parent)
				return e->id;
			j = (j + 1) & t->mask;
		}
	}
	if ((t->count + 1) * 2 > t->mask + 1 || !t->slots) {
		if (!grow(t))
			return 0;
		j = hash(parent, key) & t->mask;
		while (t->slots[j].id)
			j = (j + 1) & t->mask;
	}
	if (frame_kind == HW_FRAME_NATIVE)
		modules_check(ts);
	uint32_t id = atomic_fetch_add_explicit(&g_next_node, 1, memory_order_relaxed);
	uint8_t *p = tracker_reserve(ts, 1 + 3 * HW_VARINT_MAX + 1);
	if (!p)
		return 0;
	*p++ = HW_REC_STACK;
	p = hw_put_varint(p, id);
	p = hw_put_varint(p, parent);
	*p++ = (uint8_t)frame_kind;
	p = hw_put_varint(p, frame);
	tracker_commit(ts, p);
	struct stack_tree_entry *e = &t->slots[j];
	e->frame = key;
	e->parent = parent;
	e->id = id;
	t->count++;
	return id;
}

void stack_tree_release(struct stack_tree *t)
{
	if (t->slots)
		munmap(t->slots, (size_t)(t->mask + 1) * sizeof(struct stack_tree_entry));
	memset(t, 0, sizeof(*t));
}
