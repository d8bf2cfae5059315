/* SPDX-License-Identifier: Apache-2.0 */
/* A main for the fuzz targets without libFuzzer: runs LLVMFuzzerTestOneInput once on every file
 * named (directories: every file in them), so make check replays each corpus with any compiler. */
#include "fuzz.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int replay_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (!file) {
        perror(path);
        return -1;
    }
    size_t size = 0, capacity = 4096;
    uint8_t *data = malloc(capacity);
    size_t n;
    while (data && (n = fread(data + size, 1, capacity - size, file)) > 0) {
        size += n;
        if (size == capacity) {
            uint8_t *bigger = realloc(data, capacity * 2);
            if (!bigger) {
                free(data);
                data = NULL;
                break;
            }
            data = bigger;
            capacity *= 2;
        }
    }
    fclose(file);
    if (!data) {
        fprintf(stderr, "%s: out of memory\n", path);
        return -1;
    }
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    return 0;
}

static int replay(const char *path, int *count)
{
    struct stat info;
    if (stat(path, &info) != 0) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(info.st_mode)) {
        (*count)++;
        return replay_file(path);
    }
    struct dirent **entries;
    int n = scandir(path, &entries, NULL, alphasort), rv = 0;
    if (n < 0) {
        perror(path);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (entries[i]->d_name[0] != '.' && rv == 0) {
            size_t length = strlen(path) + strlen(entries[i]->d_name) + 2;
            char *child = malloc(length);
            snprintf(child, length, "%s/%s", path, entries[i]->d_name);
            rv = replay(child, count);
            free(child);
        }
        free(entries[i]);
    }
    free(entries);
    return rv;
}

int main(int argc, char **argv)
{
    int count = 0;
    LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        if (replay(argv[i], &count) != 0) {
            return 1;
        }
    }
    printf("%s: %d inputs replayed\n", argv[0], count);
    return 0;
}
