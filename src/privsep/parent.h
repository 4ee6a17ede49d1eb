/* parent: the privileged supervisor process. */
#ifndef NEOSOCKSD_PARENT_H
#define NEOSOCKSD_PARENT_H

int parent_main(int argc, char **argv);

#endif
