#include "writ_spawn.h"
