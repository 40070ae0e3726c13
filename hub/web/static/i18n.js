// Chinese by default, English by a switch; the choice is kept for this browser.
const TEXT = {
  zh: {
    skip: "跳到风险上报列表", title: "一张图", raise: "在地图上报风险", raising: "点击地图选择位置（Esc 取消）",
    signOut: "退出", map: "地图", details: "详情", raiseTitle: "上报风险", category: "类别",
    description: "描述", severity: "预估等级", submit: "提交", cancel: "取消", flags: "风险上报",
    alerts: "生效预警", sources: "数据源", source: "来源", status: "状态", latency: "延迟",
    asOf: "数据时间", signInNeeded: "请登录", signInHelp: "请使用您的账号登录后查看一张图。", signIn: "登录",
    live: "实时", reconnecting: "重连中", offline: "未连接", noFlags: "暂无风险上报",
    noAlerts: "暂无生效预警", deadline: "确认时限", overdue: "已超时", left: "剩余",
    acknowledge: "确认收到", verify: "开始核实", confirm: "确认属实", dismiss: "排除",
    resolve: "办结", note: "备注", stale: "数据可能过时，截至", withheld: "（不可见）",
    resources: "物资", shelters: "避难场所", incidents: "事件", riskFlags: "风险",
    community: "社区", alertArea: "预警区域", raised: "已提交", failed: "失败",
    where: "位置", mapNoTiles: "无底图：仅绘制社区范围与要素", wall: "大屏",
    signedInAs: "当前身份", viewer: "只读", refreshed: "更新于", clickMap: "点击地图上的位置",
    approx: "约", exactAmount: "精确数量", bandAmount: "数量区间（约）",
    zoomIn: "放大", zoomOut: "缩小", zoomReset: "全区", mapKeys: "地图：+/- 缩放，方向键平移，0 复位",
    S_RAISED: "已上报", S_ROUTED: "待确认", S_ACKNOWLEDGED: "已确认收到", S_VERIFYING: "核实中",
    S_CONFIRMED: "已确认属实", S_DISMISSED: "已排除", S_RESOLVED: "已办结", S_WITHDRAWN: "已撤回",
  },
  en: {
    skip: "Skip to the risk flags", title: "District picture", raise: "Raise a flag on the map",
    raising: "Click the map where the risk is (Esc to cancel)", signOut: "Sign out", map: "Map",
    details: "Details", raiseTitle: "Raise a risk flag", category: "Category",
    description: "Description", severity: "Estimated severity", submit: "Submit", cancel: "Cancel",
    flags: "Risk flags", alerts: "Active alerts", sources: "Sources", source: "Source",
    status: "Status", latency: "Latency", asOf: "As of", signInNeeded: "Please sign in",
    signInHelp: "Sign in with your account to see the district picture.", signIn: "Sign in", live: "live",
    reconnecting: "reconnecting", offline: "offline", noFlags: "No risk flags",
    noAlerts: "No active alerts", deadline: "Acknowledge by", overdue: "overdue", left: "left",
    acknowledge: "Acknowledge", verify: "Start verifying", confirm: "Confirm", dismiss: "Dismiss",
    resolve: "Resolve", note: "Note", stale: "may be stale, as of", withheld: "(withheld)",
    resources: "Resources", shelters: "Shelters", incidents: "Incidents", riskFlags: "Risk flags",
    community: "Community", alertArea: "Alert area", raised: "Raised", failed: "Failed",
    where: "Location", mapNoTiles: "No base map: community areas and features only", wall: "Wall",
    signedInAs: "Signed in as", viewer: "read-only", refreshed: "updated", clickMap: "Click a place on the map",
    approx: "about", exactAmount: "exact quantity", bandAmount: "quantity band (approximate)",
    zoomIn: "Zoom in", zoomOut: "Zoom out", zoomReset: "Whole district", mapKeys: "Map: +/- zoom, arrow keys pan, 0 resets",
    S_RAISED: "raised", S_ROUTED: "routed", S_ACKNOWLEDGED: "acknowledged", S_VERIFYING: "verifying",
    S_CONFIRMED: "confirmed", S_DISMISSED: "dismissed", S_RESOLVED: "resolved", S_WITHDRAWN: "withdrawn",
  },
};

let language = localStorage.getItem("linli.lang") === "en" ? "en" : "zh";

export function lang() {
  return language;
}

export function t(key) {
  return TEXT[language][key] ?? TEXT.zh[key] ?? key;
}

/** Switch language and re-label every element marked with data-i18n. */
export function setLang(next) {
  language = next === "en" ? "en" : "zh";
  localStorage.setItem("linli.lang", language);
  document.documentElement.lang = language === "en" ? "en" : "zh-CN";
  for (const element of document.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
  const button = document.getElementById("lang");
  button.textContent = language === "en" ? "中文" : "English";
  button.lang = language === "en" ? "zh-CN" : "en";
}

/** A time for people: local date and time in the chosen language. */
export function when(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleString(language === "en" ? "en-GB" : "zh-CN", { hour12: false });
}
