/* The Lua script sandbox's allocator (a lua_Alloc) as native code: the same size-class pool, memory accounting and
 * limit as LuaSandbox.Reallocate (apps/EioSharp.Kv.Core/Scripting/LuaSandbox.cs), without a native->managed transition
 * per allocation (docs/rationale.md, "The Lua allocator as native code").
 *
 * Not built by the project: scripts/gen-lua-alloc.sh compiles it (x86-64, position-independent, no relocations: libc's
 * realloc, free and memcpy are read from the account block, not linked) and writes the machine code into
 * Scripting/LuaAllocatorCode.cs, which LuaSandbox copies to an executable page at start-up. Change both together.
 *
 * ud is the state's account block of longs (LuaSandbox.AccountLongs): [0] bytes used, [1] limit, [2] bytes in the
 * pool, [3] 1 once the state is closing (no pooling), [4..20) the free lists' heads of the size classes 24, 40, ... 264
 * (a free block's first 8 bytes link to the next), [20] realloc, [21] free, [22] memcpy. */
#include <stddef.h>

typedef void *(*realloc_fn)(void *, size_t);
typedef void (*free_fn)(void *);
typedef void *(*memcpy_fn)(void *, const void *, size_t);

enum { USED = 0, LIMIT = 1, POOLED = 2, CLOSING = 3, HEADS = 4, CLASSES = 16, REALLOC = 20, FREE = 21, MEMCPY = 22 };
#define SMALL_MAX (24 + 16 * (CLASSES - 1)) /* 264 */
#define POOL_CAP (256L * 1024)

static inline int small_class(size_t n) { return n <= 24 ? 0 : (int)((n - 24 + 15) >> 4); }

static inline long class_size(int k) { return 24 + 16L * k; }

static inline void *take_small(long *a, int k)
{
    void **head = (void **)(a + HEADS + k);
    void *block = *head;
    if (block) {
        *head = *(void **)block;
        a[POOLED] -= class_size(k);
        return block;
    }
    return ((realloc_fn)a[REALLOC])(NULL, (size_t)class_size(k));
}

static inline void release(long *a, void *block, size_t size)
{
    if (size <= SMALL_MAX && a[CLOSING] == 0) {
        int k = small_class(size);
        long cs = class_size(k);
        if (a[POOLED] + cs <= POOL_CAP) {
            void **head = (void **)(a + HEADS + k);
            *(void **)block = *head;
            *head = block;
            a[POOLED] += cs;
            return;
        }
    }
    ((free_fn)a[FREE])(block);
}

/* Everything but the pool's fast paths (see kv_lua_alloc). */
static __attribute__((noinline)) void *reallocate(long *a, void *ptr, size_t osize, size_t nsize)
{
    size_t old = ptr ? osize : 0; /* with no block, osize is a type tag */
    if (nsize == 0) {
        if (ptr) {
            release(a, ptr, old);
            a[USED] -= (long)old;
        }
        return NULL;
    }
    long delta = (long)nsize - (long)old;
    if (delta > 0 && a[USED] + delta > a[LIMIT]) return NULL; /* Lua raises "not enough memory"; a shrink never fails */
    void *result;
    if (nsize <= SMALL_MAX) {
        int k = small_class(nsize);
        if (ptr && old <= SMALL_MAX && small_class(old) == k) {
            result = ptr; /* the block's class already holds nsize */
        } else {
            result = take_small(a, k);
            if (!result) {
                if (!ptr || nsize > old) return NULL;
                result = ptr; /* a shrink must not fail: keep the larger block (its size is >= nsize's class) */
            } else if (ptr) {
                ((memcpy_fn)a[MEMCPY])(result, ptr, nsize < old ? nsize : old);
                release(a, ptr, old);
            }
        }
    } else {
        /* A large block: libc's realloc (a small block is a plain malloc'd block too, so it may grow in place). */
        result = ((realloc_fn)a[REALLOC])(ptr, nsize);
        if (!result) return NULL;
    }
    a[USED] += delta;
    return result;
}

/* The entry (lua_Alloc). Most calls are a small block freed into a pool with room or a new small block taken from a
 * non-empty free list: those are done here without saving a register; the rest goes to reallocate (a tail call). */
void *kv_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    long *a = (long *)ud;
    if (nsize == 0) {
        if (ptr && osize <= SMALL_MAX && a[CLOSING] == 0) {
            int k = small_class(osize);
            long cs = class_size(k);
            if (a[POOLED] + cs <= POOL_CAP) {
                void **head = (void **)(a + HEADS + k);
                *(void **)ptr = *head;
                *head = ptr;
                a[POOLED] += cs;
                a[USED] -= (long)osize;
                return NULL;
            }
        }
    } else if (!ptr && nsize <= SMALL_MAX && a[USED] + (long)nsize <= a[LIMIT]) {
        int k = small_class(nsize);
        void **head = (void **)(a + HEADS + k);
        void *block = *head;
        if (block) {
            *head = *(void **)block;
            a[POOLED] -= class_size(k);
            a[USED] += (long)nsize;
            return block;
        }
    }
    return reallocate(a, ptr, osize, nsize);
}
