#pragma once
// Replaced by the hook spawner (issue 4).
