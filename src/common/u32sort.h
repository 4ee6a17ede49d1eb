/* u32sort: sort an array of uint32_t in place (heapsort: no allocation, no
 * recursion). glibc's qsort() may call sysinfo(2) for arrays of 1 KiB or
 * more, which the children's seccomp filters do not allow. */
#ifndef NEOSOCKSD_U32SORT_H
#define NEOSOCKSD_U32SORT_H

#include <stddef.h>
#include <stdint.h>

void u32sort(uint32_t *a, size_t n);

#endif
