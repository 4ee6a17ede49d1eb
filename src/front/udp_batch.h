/* udp_batch: sending a batch of datagrams with as few system calls and
 * as little kernel work per datagram as it can (for udp_assoc.c). */
#ifndef NEOSOCKSD_UDP_BATCH_H
#define NEOSOCKSD_UDP_BATCH_H

#include <stdbool.h>
#include <sys/socket.h>

/* Send m[0..n) on fd, in order; each m[i] names its address (msg_name)
 * and its iovecs. Consecutive datagrams to the same msg_name pointer,
 * whose iovecs follow each other in memory, of one length up to 1452
 * bytes (the last may be shorter) go as one UDP_SEGMENT (GSO) send while
 * *gso is true: the kernel builds one packet train and cuts it late. A
 * socket or path that refuses GSO sets *gso false and the datagrams go
 * one by one. At most 64 per call. Returns how many of m[0..n) were
 * sent: m[0..ret). */
unsigned udp_batch_send(int fd, struct mmsghdr *m, unsigned n, bool *gso);

#endif
