// kiln.Attention's head ranges (see attention_ranges.h).
#include "passes/attention_ranges.h"

namespace kiln::passes {

bool AttentionSlotLayouts(const Node& a, AttentionLayout slot_layout[3]) {
  const Attribute* layout = a.attr("layout");
  const Attribute* layouts = a.attr("layouts");
  AttentionLayouts l;
  if (!ParseAttentionLayouts(layout ? layout->s : "bhsd", layouts ? &layouts->strings : nullptr, &l).empty())
    return false;
  slot_layout[0] = l.q;
  slot_layout[1] = l.k;
  slot_layout[2] = l.v;
  return true;
}

int64_t WholeHeads(const Node& a, size_t slot, AttentionLayout layout) {
  const Shape& s = a.input(slot)->shape();
  AttentionAxes ax;
  if (!s.rank_known() || !AttentionAxesOf(layout, s.rank(), &ax)) return 0;
  const Dim& h = s[static_cast<size_t>(ax.h)];
  return h.known() ? h.value() : 0;
}

bool CompleteRanges(const Node& a, const AttentionLayout slot_layout[3], std::vector<int64_t>* ranges) {
  for (size_t i = 0; i < 3; ++i)
    if ((*ranges)[2 * i + 1] == 0 && ((*ranges)[2 * i + 1] = WholeHeads(a, i, slot_layout[i])) == 0)
      return false;
  return true;
}

}  // namespace kiln::passes
