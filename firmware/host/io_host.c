/*
 * tinyml runtime for host builds: the tml_runtime.h interface over stdio.
 */
#include <stdio.h>
#include <stdlib.h>

#include "tml_runtime.h"

#define TML_HOST_MAX_FILES 8

static FILE *tml_host_files[TML_HOST_MAX_FILES];

static int tml_host_open(const char *path, const char *mode)
{
    int handle;
    for (handle = 0; handle < TML_HOST_MAX_FILES; handle++) {
        if (tml_host_files[handle] == NULL) {
            FILE *file = fopen(path, mode);
            if (file == NULL) {
                return -1;
            }
            tml_host_files[handle] = file;
            return handle;
        }
    }
    return -1;
}

static FILE *tml_host_file(int handle)
{
    if (handle < 0 || handle >= TML_HOST_MAX_FILES) {
        return NULL;
    }
    return tml_host_files[handle];
}

int tml_io_open_read(const char *path)
{
    return tml_host_open(path, "rb");
}

int tml_io_open_write(const char *path)
{
    return tml_host_open(path, "wb");
}

int tml_io_read(int handle, void *data, unsigned bytes)
{
    FILE *file = tml_host_file(handle);
    size_t got;
    if (file == NULL) {
        return -1;
    }
    got = fread(data, 1, bytes, file);
    if (got < bytes && ferror(file)) {
        return -1;
    }
    return (int)got;
}

int tml_io_write(int handle, const void *data, unsigned bytes)
{
    FILE *file = tml_host_file(handle);
    if (file == NULL) {
        return -1;
    }
    if (fwrite(data, 1, bytes, file) != bytes) {
        return -1;
    }
    return (int)bytes;
}

int tml_io_close(int handle)
{
    FILE *file = tml_host_file(handle);
    int status;
    if (file == NULL) {
        return -1;
    }
    tml_host_files[handle] = NULL;
    status = fclose(file);
    return status == 0 ? 0 : -1;
}

void tml_puts(const char *text)
{
    fputs(text, stdout);
    fflush(stdout);
}

void tml_exit(int code)
{
    int handle;
    for (handle = 0; handle < TML_HOST_MAX_FILES; handle++) {
        if (tml_host_files[handle] != NULL) {
            (void)tml_io_close(handle);
        }
    }
    fflush(stdout);
    exit(code);
}
