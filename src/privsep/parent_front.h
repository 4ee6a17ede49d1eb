/* parent_front: the parent's end of the front's channel. */
#ifndef NEOSOCKSD_PARENT_FRONT_H
#define NEOSOCKSD_PARENT_FRONT_H

void parent_front_init(void);

#endif
