/* Compiler helpers shared by the shim and the analyzer.
 * Nothing here may allocate or depend on a library. */
#ifndef HEAPWISE_COMPILER_H
#define HEAPWISE_COMPILER_H

#define HW_LIKELY(x) __builtin_expect(!!(x), 1)
#define HW_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HW_EXPORT __attribute__((visibility("default")))
#define HW_UNUSED __attribute__((unused))
#define HW_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
