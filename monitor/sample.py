"""Deterministic sample prefecture: a size, a seed and a year in; the five import CSV files out.

`write_sample()` streams units, projects, indicators and the May/August reports of a realistic prefecture
(Chinese names, lognormal budgets, a real-looking mix of indicator kinds and of green/yellow/red lights),
UTF-8 with canonical English headers, so import, evaluation, demos and benchmarks have data at any scale.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import math
import random
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import IO, NamedTuple, Protocol

HEADERS: dict[str, tuple[str, ...]] = {
    "units": ("unit_code", "unit_name", "email", "supervisor_code"),
    "projects": ("project_code", "project_name", "unit_code", "budget", "carryover", "fund_flag", "category",
                 "profile"),
    "indicators": ("project_code", "indicator_code", "level1", "level2", "name", "direction", "target",
                   "measure_unit", "kind", "profile"),
    "project_reports": ("checkpoint", "project_code", "executed", "forecast_executed"),
    "indicator_reports": ("checkpoint", "project_code", "indicator_code", "actual", "forecast", "possibility",
                          "causes", "cause_text", "measures"),
}  # fmt: skip

# fmt: off
# Supervising departments (主管部门) with their sector: a prefecture has these 40;
# larger samples repeat them for each (fictional) county.
_DEPARTMENTS: tuple[tuple[str, str], ...] = (
    ("农业农村局", "agri"), ("教育局", "edu"), ("卫生健康委员会", "health"), ("交通运输局", "transport"),
    ("林业和草原局", "forest"), ("文化和旅游局", "culture"), ("气象局", "weather"), ("水务局", "water"),
    ("民政局", "civil"), ("人力资源和社会保障局", "hr"), ("住房和城乡建设局", "housing"),
    ("生态环境局", "eco"), ("应急管理局", "emergency"), ("市场监督管理局", "market"),
    ("乡村振兴局", "agri"), ("医疗保障局", "health"), ("体育局", "culture"), ("退役军人事务局", "civil"),
    ("残疾人联合会", "civil"), ("民族宗教事务委员会", "civil"), ("公安局", "general"),
    ("司法局", "general"), ("财政局", "general"), ("发展和改革委员会", "general"),
    ("自然资源局", "general"), ("工业和信息化局", "general"), ("商务局", "general"),
    ("科学技术局", "general"), ("审计局", "general"), ("统计局", "general"), ("档案馆", "general"),
    ("机关事务管理局", "general"), ("地方志编纂委员会办公室", "general"), ("融媒体中心", "culture"),
    ("供销合作社联合社", "agri"), ("妇女联合会", "civil"), ("共青团委员会", "general"),
    ("总工会", "general"), ("人民检察院", "general"), ("中级人民法院", "general"),
)

# Per sector: subordinate unit types; township unit type; project names (/profile); indicator lines
# "level2|name|direction|unit|targets" (targets: "lo~hi" for quantities, else alternatives, "@" = the budget).
_SECTOR_DATA: dict[str, tuple[str, str, str, str]] = {
    "agri": (
        "动物疫病预防控制中心 农业技术推广中心 畜牧技术推广站 农业综合行政执法支队 植保植检站 "
        "土壤肥料工作站 农产品质量安全检测中心 农业机械化技术推广站",
        "农业农村综合服务中心",
        "动物疫病强制免疫疫苗采购/spring_autumn 重大动物疫病防控经费/spring_autumn 葡萄酒产业宣传推介 "
        "高标准农田建设/autumn_construction 耕地地力保护补贴 农作物病虫害统防统治 农业技术推广与农民培训 "
        "高原特色农业产业发展专项资金 农产品质量安全监测经费 农村人居环境整治 衔接推进乡村振兴补助资金",
        "数量|免疫注射牲畜|≥|头|50000~400000 数量|培训农民|≥|人次|500~8000 数量|建设高标准农田|≥|万亩|1~12 "
        "数量|病虫害统防统治面积|≥|万亩|5~60 数量|农产品抽检样品|≥|批次|300~3000 "
        "数量|举办宣传推介活动|≥|场次|5~40 数量|补贴农户|≥|户|2000~50000 质量|群体免疫密度|≥|%|90,95 "
        "质量|免疫抗体合格率|≥|%|70,80 质量|农产品质量安全抽检合格率|≥|%|97,98 "
        "社会效益|重大动物疫情发生次数|=|次|0 经济效益|带动农户增收|定性||有效带动,明显增加 "
        "经济效益|农村居民人均可支配收入增幅|>|%|6,7,8 可持续影响|农业产业持续发展|定性||有效促进 "
        "服务对象满意度|养殖户满意度|≥|%|90 服务对象满意度|农户满意度|≥|%|85,90",
    ),
    "edu": (
        "第一中学 第二中学 第三中学 民族中学 实验小学 第一小学 职业高级中学 特殊教育学校 幼儿园 "
        "教师进修学校",
        "中心学校",
        "学生资助补助经费/semester 农村义务教育学生营养改善计划/semester 义务教育薄弱环节改善与能力提升 "
        "普惠性学前教育发展补助 教师培训经费 校舍维修改造/autumn_construction 高中阶段教育质量提升 "
        "职业教育实训基地建设 中小学教育信息化设备购置",
        "数量|资助学生|≥|人次|1000~40000 数量|受益学生|≥|人|2000~60000 数量|培训教师|≥|人次|200~5000 "
        "数量|维修改造校舍面积|≥|平方米|2000~30000 数量|购置教学设备|≥|台（套）|50~2000 "
        "质量|资助对象认定准确率|≥|%|100,98 质量|营养餐供餐合格率|≥|%|100 质量|义务教育巩固率|≥|%|95,96 "
        "社会效益|家庭经济困难学生就学保障|定性||有效保障 社会效益|学生因贫辍学人数|=|人|0 "
        "可持续影响|办学条件|定性||明显改善,持续改善 服务对象满意度|学生及家长满意度|≥|%|90,95",
    ),
    "health": (
        "人民医院 中医医院 疾病预防控制中心 妇幼保健院 卫生健康综合监督执法支队 第二人民医院 精神卫生中心 "
        "中心血站 急救中心",
        "卫生院",
        "基本公共卫生服务补助 重大传染病防控经费 免疫规划疫苗接种/spring_autumn 医疗卫生机构能力建设 "
        "公立医院综合改革补助 妇幼健康服务项目 艾滋病防治专项经费 医疗设备购置 城乡居民医疗救助",
        "数量|接种疫苗|≥|剂次|20000~300000 数量|开展健康教育讲座|≥|场次|20~400 "
        "数量|管理高血压患者|≥|人|5000~80000 数量|筛查孕产妇|≥|人|2000~30000 数量|购置医疗设备|≥|台|5~200 "
        "数量|救助困难群众|≥|人次|1000~30000 质量|适龄儿童免疫规划疫苗接种率|≥|%|90,95 "
        "质量|高血压患者规范管理率|≥|%|60,65 质量|孕产妇系统管理率|≥|%|90 "
        "社会效益|重大传染病暴发流行次数|=|次|0 社会效益|居民健康素养水平|≥|%|25,28 "
        "社会效益|孕产妇死亡率|≤|1/10万|15,18 社会效益|基层医疗服务能力|定性||有效提升 "
        "服务对象满意度|患者满意度|≥|%|90 服务对象满意度|居民满意度|≥|%|85,90",
    ),
    "transport": (
        "公路养护段 道路运输管理所 交通建设工程质量监督站 农村公路管理站 交通运输综合行政执法支队",
        "交通运输管理所",
        "农村公路建设养护/autumn_construction 国省干线公路养护 危桥改造/autumn_construction 农村客运补贴 "
        "公路安全生命防护工程 城乡客运一体化发展",
        "数量|养护农村公路|≥|公里|100~2000 数量|改造危桥|≥|座|2~30 数量|实施安全生命防护工程|≥|公里|20~300 "
        "数量|补贴客运车辆|≥|辆|50~800 质量|公路优良路率|≥|%|80,85 质量|工程质量合格率|≥|%|100,98 "
        "时效|路面病害修复及时率|≥|%|95 社会效益|群众出行条件|定性||明显改善 "
        "社会效益|重大交通安全责任事故发生次数|=|次|0 可持续影响|公路使用年限|≥|年|8,10,15 "
        "服务对象满意度|沿线群众满意度|≥|%|90",
    ),
    "forest": (
        "森林消防支队 国有林场 自然保护区管护局 林草有害生物防治检疫站 林业和草原技术推广站 "
        "野生动物救护中心",
        "林业和草原服务站",
        "森林草原防灭火专项经费 天然林资源保护 退化草原生态修复 林草有害生物防治 公益林生态效益补偿 "
        "国土绿化造林/spring_autumn 自然保护地管护",
        "数量|完成营造林|≥|万亩|1~20 数量|管护森林面积|≥|万亩|50~600 数量|开展防火巡护|≥|人次|500~20000 "
        "数量|防治林业有害生物|≥|万亩|2~40 数量|开展防灭火演练|≥|场次|5~60 质量|造林成活率|≥|%|85,90 "
        "质量|森林火灾受害率|≤|‰|0.9 质量|林业有害生物成灾率|≤|‰|3.3 生态效益|森林覆盖率|≥|%|65,70 "
        "生态效益|生态环境|定性||明显改善 社会效益|重特大森林火灾发生次数|=|次|0 "
        "服务对象满意度|林农满意度|≥|%|90",
    ),
    "culture": (
        "图书馆 博物馆 文化馆 民族歌舞团 文物管理所 旅游服务中心 体育运动学校 全民健身中心",
        "文化站",
        "公共文化场馆免费开放补助 非物质文化遗产保护 文物保护修缮 文化惠民演出 旅游宣传推介 "
        "全民健身活动经费 民族文化传承发展",
        "数量|开展文化惠民演出|≥|场次|20~300 数量|接待读者|≥|人次|20000~400000 "
        "数量|举办全民健身赛事|≥|场次|5~60 数量|修缮文物建筑|≥|处|2~20 "
        "数量|开展非遗传承培训|≥|人次|100~3000 质量|文物修缮工程验收合格率|≥|%|100 "
        "质量|每周免费开放时长|≥|小时|42,48 社会效益|群众文化生活|定性||明显丰富 "
        "经济效益|旅游综合收入增长率|≥|%|8,10 社会效益|文物安全事故发生次数|=|次|0 "
        "服务对象满意度|观众满意度|≥|%|90 服务对象满意度|游客满意度|≥|%|85",
    ),
    "weather": (
        "气象台 人工影响天气中心 气象服务中心 防雷减灾中心",
        "气象服务站",
        "人工影响天气作业经费/summer_season 气象防灾减灾能力建设 气象灾害监测预警 "
        "农业气象服务/summer_season",
        "数量|人工增雨作业|≥|次|50~500 数量|防雹作业|≥|次|30~300 数量|发布气象预警信息|≥|条|200~3000 "
        "数量|维护自动气象站|≥|个|20~200 质量|天气预报准确率|≥|%|85,88 质量|气象站数据到报率|≥|%|98,99 "
        "时效|预警信息提前发布时间|≥|分钟|15,30 社会效益|作业安全事故发生次数|=|次|0 "
        "经济效益|冰雹灾害损失|定性||有效减少 服务对象满意度|受益群众满意度|≥|%|90",
    ),
    "water": (
        "水文水资源局 水利工程管理所 水土保持工作站 农村供水管理站 灌区管理局 水库管理局",
        "水务站",
        "农村饮水安全巩固提升 中小河流治理/autumn_construction 水土流失综合治理 小型水库维修养护 "
        "河湖长制工作经费",
        "数量|受益人口|≥|人|5000~200000 数量|治理河道长度|≥|公里|2~40 "
        "数量|治理水土流失面积|≥|平方公里|5~80 数量|维修养护水库|≥|座|3~40 数量|开展河湖巡查|≥|次|100~2000 "
        "质量|农村自来水普及率|≥|%|90,95 质量|水质达标率|≥|%|95,98 生态效益|河湖水环境|定性||明显改善 "
        "社会效益|水利工程安全事故发生次数|=|次|0 可持续影响|工程设计使用年限|≥|年|15,20 "
        "服务对象满意度|受益群众满意度|≥|%|90",
    ),
    "civil": (
        "社会福利院 救助管理站 殡仪馆 儿童福利院 光荣院 老年养护院 残疾人康复中心",
        "社会事务服务中心",
        "城乡居民最低生活保障 特困人员救助供养 临时救助 困难残疾人生活补贴和重度残疾人护理补贴 "
        "孤儿基本生活保障 养老服务体系建设 退役军人优抚经费 民族团结进步创建",
        "数量|保障城乡低保对象|≥|人|5000~60000 数量|救助特困人员|≥|人|500~8000 "
        "数量|实施临时救助|≥|人次|500~10000 数量|发放残疾人补贴|≥|人|2000~30000 "
        "数量|新增养老床位|≥|张|50~800 质量|补助资金发放准确率|≥|%|100 质量|低保对象动态管理率|≥|%|98,100 "
        "社会效益|困难群众基本生活|定性||有效保障 社会效益|因救助不及时引发的极端事件|=|起|0 "
        "服务对象满意度|救助对象满意度|≥|%|90,95",
    ),
    "hr": (
        "公共就业和人才服务中心 社会保险中心 劳动保障监察支队 技工学校 人事考试中心",
        "劳动保障所",
        "就业创业补助资金 职业技能提升行动 高校毕业生就业见习补贴 城乡居民基本养老保险补助 "
        "人才引进专项经费",
        "数量|新增城镇就业|≥|人|2000~20000 数量|开展职业技能培训|≥|人次|1000~20000 "
        "数量|组织招聘会|≥|场次|10~120 数量|引进高层次人才|≥|人|5~100 质量|培训合格率|≥|%|90 "
        "质量|城镇调查失业率|≤|%|5.5 经济效益|培训后就业率|≥|%|70,80 社会效益|就业形势|定性||总体稳定 "
        "服务对象满意度|参训人员满意度|≥|%|90",
    ),
    "housing": (
        "住房公积金管理中心 建设工程质量安全监督站 园林绿化管理所 市政设施维护中心 路灯管理所 "
        "环境卫生管理站",
        "村镇建设服务中心",
        "城镇老旧小区改造/autumn_construction 农村危房改造 保障性安居工程 城市路灯维护管理 "
        "城市园林绿化养护 城市生活垃圾处理",
        "数量|改造老旧小区|≥|个|5~80 数量|改造农村危房|≥|户|100~3000 数量|维护路灯|≥|盏|2000~30000 "
        "数量|养护绿地面积|≥|万平方米|20~300 质量|路灯亮灯率|≥|%|98 质量|生活垃圾无害化处理率|≥|%|95,98 "
        "时效|路灯故障平均修复时长|≤|小时|24,48 社会效益|居民居住条件|定性||明显改善 "
        "社会效益|安全责任事故发生次数|=|次|0 服务对象满意度|居民满意度|≥|%|90",
    ),
    "eco": (
        "生态环境监测站 生态环境保护综合行政执法支队 固体废物和化学品管理中心",
        "环境保护所",
        "大气污染防治 水污染防治 土壤污染防治 生态环境监测能力建设 农村环境综合整治",
        "数量|开展环境监测|≥|次|200~3000 数量|整治农村环境|≥|个（村）|10~120 数量|检查企业|≥|家次|200~3000 "
        "质量|空气质量优良天数比率|≥|%|95,98 质量|地表水水质优良比例|≥|%|90,100 "
        "生态效益|生态环境质量|定性||持续改善 社会效益|突发环境事件发生次数|=|次|0 "
        "服务对象满意度|公众满意度|≥|%|85",
    ),
    "emergency": (
        "应急救援支队 地震监测中心 安全生产技术服务中心 应急物资储备库",
        "应急管理所",
        "安全生产监管执法 应急救援队伍建设 防汛抗旱应急/summer_season 地震监测预警 自然灾害救助资金",
        "数量|开展安全生产检查|≥|家次|500~5000 数量|组织应急演练|≥|场次|10~120 "
        "数量|储备应急物资|≥|件（套）|1000~20000 质量|隐患整改率|≥|%|95,100 "
        "时效|应急响应到达时间|≤|分钟|30,60 社会效益|较大及以上生产安全事故发生次数|=|起|0 "
        "社会效益|防灾减灾能力|定性||有效提升 服务对象满意度|受灾群众满意度|≥|%|90",
    ),
    "market": (
        "检验检测院 食品检验所 计量测试所 特种设备检验所 市场监管综合行政执法支队",
        "市场监管所",
        "食品安全抽检 特种设备安全监察 药品安全监管 计量器具强制检定 知识产权保护",
        "数量|抽检食品|≥|批次|1000~8000 数量|检验特种设备|≥|台|1000~20000 "
        "数量|检定计量器具|≥|台（件）|5000~50000 质量|抽检任务完成率|≥|%|100 质量|检验报告准确率|≥|%|99 "
        "社会效益|重大食品安全事故发生次数|=|次|0 社会效益|市场秩序|定性||有效规范 "
        "服务对象满意度|消费者满意度|≥|%|85",
    ),
    "general": (
        "信息中心 机关服务中心 事务中心 培训中心 数据管理中心 综合保障中心",
        "便民服务中心",
        "业务工作经费 信息化系统建设与运维 办公设备购置 干部教育培训经费 宣传工作经费 专项调查与统计监测 "
        "政府购买服务 档案数字化 法律援助经费 重点工作督查经费",
        "数量|开展培训|≥|人次|100~3000 数量|组织宣传活动|≥|场次|5~60 数量|完成调查样本|≥|户|500~10000 "
        "数量|数字化档案|≥|卷|5000~80000 数量|办理法律援助案件|≥|件|200~3000 质量|系统正常运行率|≥|%|98,99 "
        "质量|资产验收合格率|≥|%|100 社会效益|工作效率|定性||有效提升 社会效益|履职能力|定性||明显增强 "
        "服务对象满意度|服务对象满意度|≥|%|90,95",
    ),
}
_GENERIC = (
    "数量|开展监督检查|≥|次|4~24 质量|资金使用合规率|≥|%|100 时效|项目开工时间|≤||03-31,04-30,05-31,06-30 "
    "时效|项目完工时间|≤||10-31,11-30,12-31 时效|资金拨付完成时间|≤||06-30,07-31,09-30 "
    "时效|资金拨付及时率|≥|%|95,100 成本|项目总成本|≤|万元|@ 成本|人均补助标准|≤|元/人|300,500,1000,1500 "
    "成本|单位成本控制|≤|元/人次|50,100,200 可持续影响|项目持续发挥作用年限|≥|年|3,5 "
    "可持续影响|长效管理机制|定性||逐步健全,有效建立 社会效益|社会效益|定性||有效提升,明显改善"
)

_GROUPS = {"数量": 0, "质量": 1, "时效": 2, "成本": 3, "经济效益": 4, "社会效益": 4, "生态效益": 4,
           "可持续影响": 4, "服务对象满意度": 5}
_LEVEL1 = ("产出指标", "产出指标", "产出指标", "成本指标", "效益指标", "满意度指标")
_EXTRA_GROUP_WEIGHTS = (3, 2, 2, 1, 2, 0)  # slots beyond the core four: 数量 质量 时效 成本 效益 满意度
_COUNT_WEIGHTS = (5, 12, 24, 24, 14, 9, 5, 3, 2, 2)  # indicators per project, 3..12: mean ≈ 6.2
# Approximate cumulative share of the year's work done by the end of May and of August, per seasonal profile.
# May and August shares of the profiles in rules/default.yaml (keep in step with that file).
_PROGRESS = {"": (5 / 12, 8 / 12), "spring_autumn": (0.45, 0.52), "summer_season": (0.32, 0.80),
             "semester": (0.50, 0.55), "autumn_construction": (0.16, 0.40)}
# Ratio to time progress by state (0 on schedule, 1 slightly behind: yellow, 2 badly behind: red), for the
# budget (executed / budget / P) and for cumulative indicators (actual / target / P).
_BUDGET_RATIO = ((0.81, 1.6), (0.61, 0.79), (0.02, 0.59))
_PACE = ((0.82, 1.18), (0.61, 0.79), (0.1, 0.59))
_QUALITATIVE = ("达成目标", "部分达成目标并具有一定效果", "未达成目标且效果较差")
_CAUSES = {
    "经费保障": "上级资金尚未下达，配套资金未落实", "制度保障": "实施方案审批及招标程序较长",
    "人员保障": "专业技术人员不足，工作力量薄弱", "硬件条件保障": "设备到货延迟，场地条件不具备",
    "其他": "受天气和季节性因素影响，工作推进滞后",
}
_MEASURES = ("加快项目实施进度，确保按期完成", "加强与上级部门沟通，督促资金及时到位",
             "优化实施方案，倒排工期压实责任", "加强人员培训和调配，补齐工作力量",
             "每月调度进度，及时研究解决问题")
_CATEGORIES = ("一般性项目", "专项资金", "基本建设", "政府采购", "转移支付")
# fmt: on


class _Rows(Protocol):
    def writerow(self, row: Iterable[object], /) -> object: ...


class _Spec(NamedTuple):
    group: int  # 0 数量 1 质量 2 时效 3 成本 4 效益 5 满意度: indicator order within a project
    level2: str
    name: str
    direction: str
    unit: str
    kind: str
    targets: tuple[str, ...]
    span: tuple[int, int]  # cumulative target range, else (0, 0)


class _Sector(NamedTuple):
    unit_types: tuple[str, ...]
    town_type: str
    projects: tuple[tuple[str, str], ...]  # (name, profile)
    pools: tuple[tuple[_Spec, ...], ...]  # by group


class _Unit(NamedTuple):
    code: str
    sector: str
    place: str


def _spec(line: str) -> _Spec:
    level2, name, direction, unit, text = line.split("|")
    targets = tuple(text.split(","))
    if direction == "定性":
        kind = "qualitative"
    elif targets[0][2:3] == "-":
        kind = "milestone"
    elif level2 == "数量" and direction in "≥>" and unit != "%":
        kind = "cumulative"
    else:
        kind = "level"
    lo, _, hi = text.partition("~")
    span = (int(lo), int(hi)) if hi else (0, 0)
    return _Spec(_GROUPS[level2], level2, name, direction, unit, kind, targets, span)


def _sector(data: tuple[str, str, str, str]) -> _Sector:
    types, town, names, lines = data
    specs = [_spec(line) for line in (lines + " " + _GENERIC).split()]
    pairs = [(n.partition("/")[0], n.partition("/")[2]) for n in names.split()]
    projects = tuple(pairs + [p for p in pairs if p[1]])  # seasonal templates count twice
    pools = tuple(tuple(s for s in specs if s.group == g) for g in range(6))
    return _Sector(tuple(types.split()), town, projects, pools)


_SECTORS = {key: _sector(data) for key, data in _SECTOR_DATA.items()}


def _place(k: int) -> str:
    """0 is the prefecture itself (州); 1.. are (fictional) counties, each name distinct for k ≤ 600."""
    if k == 0:
        return "州"
    j = k - 1
    return (
        "青白金龙松石长永安云丰凤宁平华东西南新兴"[j % 20]
        + "山水河川源溪峰岭江泉"[(j // 20 + 3 * j) % 10]
        + "县市区"[j // 200 % 3]
    )


def _money(cents: int) -> str:
    """Hundredths of 万元 as a plain decimal: 118000 -> '1180.00'."""
    return f"{cents // 100}.{cents % 100:02d}"


def _fmt(value: float) -> str:
    """One decimal, without a trailing .0: 96.0 -> '96', 92.14 -> '92.1'."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def write_sample(
    out_dir: Path, projects: int = 2450, seed: int = 2025, year: int = 2025, may_only: bool = False
) -> dict[str, Path]:
    """Write units.csv, projects.csv, indicators.csv, project_reports.csv, indicator_reports.csv into
    out_dir (created if missing), UTF-8, canonical English headers. Returns {kind: path}. `may_only`:
    the report files hold the May reports alone (what a bureau has at its May checkpoint); every other
    row is the same as without it.

    The same (projects, seed, year) always gives byte-identical files; rows are streamed, so memory stays
    small at any size (the August report rows wait in a temporary file to keep each file in checkpoint order).
    """
    if projects < 1:
        raise ValueError(f"projects must be at least 1 (got {projects})")
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths = {kind: out_dir / f"{kind}.csv" for kind in HEADERS}
    units = _write_units(paths["units"], rng, max(3, round(projects / 2.9)))
    with ExitStack() as stack:
        files = {
            k: stack.enter_context(p.open("w", newline="", encoding="utf-8"))
            for k, p in paths.items()
            if k != "units"
        }
        writers = {k: csv.writer(f, lineterminator="\n") for k, f in files.items()}
        for kind, writer in writers.items():
            writer.writerow(HEADERS[kind])
        later: dict[str, IO[str]] = {
            k: stack.enter_context(tempfile.TemporaryFile("w+", newline="", encoding="utf-8"))
            for k in ("project_reports", "indicator_reports")
        }
        later_writers = {k: csv.writer(f, lineterminator="\n") for k, f in later.items()}
        _write_projects(rng, units, projects, year, writers, later_writers)
        for kind, tmp in later.items():
            if not may_only:
                tmp.seek(0)
                shutil.copyfileobj(tmp, files[kind])
    return paths


def sample_summary(paths: Mapping[str, Path]) -> dict[str, int]:
    """Data rows (lines minus the header) per kind of a written sample."""
    counts: dict[str, int] = {}
    for kind, path in paths.items():
        with path.open("rb") as f:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
        counts[kind] = max(0, lines - 1)
    return counts


def _write_units(path: Path, rng: random.Random, n_units: int) -> list[_Unit]:
    """Departments first, each followed by its subordinate units; returns the units in file order."""
    n_depts = max(1, round(n_units / 21))
    size = {"edu": 3.0, "health": 3.0, "general": 0.5}  # schools and hospitals: big; 财政局, 审计局 …: small
    weights = [rng.uniform(0.4, 2.0) * size.get(_DEPARTMENTS[d % 40][1], 1.0) for d in range(n_depts)]
    others, total = n_units - n_depts, sum(weights)
    counts = [int(others * w / total) for w in weights]
    for d in range(others - sum(counts)):
        counts[d % n_depts] += 1
    units: list[_Unit] = []
    used: set[str] = set()
    towns: dict[str, int] = {}
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(HEADERS["units"])
        for d, count in enumerate(counts):
            dept_name, sector_key = _DEPARTMENTS[d % 40]
            place, sector = _place(d // 40), _SECTORS[sector_key]
            prefix = str(101 + d)  # codes: department prefix + 3 digits, the department itself is …001
            qualifier = dept_name if sector_key == "general" else ""  # 州财政局信息中心, 州审计局事务中心
            for seq in range(1, count + 2):
                code = f"{prefix}{seq:03d}"
                if seq == 1:
                    name, supervisor = place + dept_name, ""
                else:
                    name, supervisor = _unit_name(rng, used, towns, place, sector, qualifier), f"{prefix}001"
                used.add(name)
                email = f"u{code}@example.gov.cn"
                if rng.random() < 0.05:
                    email += f";cw{code}@example.gov.cn"
                writer.writerow((code, name, email, supervisor))
                unit_place = place if place != "州" or name.startswith("州") else name[:3]
                units.append(_Unit(code, sector_key, unit_place))
    return units


def _unit_name(
    rng: random.Random, used: set[str], towns: dict[str, int], place: str, sector: _Sector, dept: str
) -> str:
    """A unit name not used yet: place + unit type, else a township unit such as 青山县龙潭镇卫生院."""
    for _ in range(8):
        where = place if place != "州" or rng.random() < 0.7 else _place(rng.randint(1, 10))
        name = where + dept + rng.choice(sector.unit_types)
        if name not in used:
            return name
    key = place + dept + sector.town_type
    while name in used:  # a township of the place (or of a county), from a random start so names spread out
        k = towns[key] = towns.get(key, rng.randrange(300)) + 1
        county = place if place != "州" else _place(1 + k % 10)
        town = (
            "龙凤马石花竹梅沙桥坝新安和平清"[k % 15] + "潭山坪街村塘口营屯湾"[(k // 15 + 3 * (k % 15)) % 10]
        )
        name = county + town + "镇乡"[k // 150 % 2] + sector.town_type + (str(k // 300) if k >= 300 else "")
    return name


def _write_projects(
    rng: random.Random,
    units: list[_Unit],
    n: int,
    year: int,
    out: Mapping[str, _Rows],
    later: Mapping[str, _Rows],
) -> None:
    """Write each project with its indicators and reports; August report rows go to `later`."""
    cum: list[float] = []
    acc = 0.0
    for unit in units:  # departments (code …001) run more projects than their subordinate units
        acc += 4.0 if unit.code.endswith("001") else rng.uniform(0.3, 1.7)
        cum.append(acc)
    seq = [0] * len(units)
    may, aug = f"{year}-05", f"{year}-08"
    ends = (dt.date(year, 5, 31), dt.date(year, 8, 31))
    for _ in range(n):
        u = bisect.bisect(cum, rng.random() * acc)
        unit, sector = units[u], _SECTORS[units[u].sector]
        seq[u] += 1
        code = f"532300{year % 100:02d}{unit.code}{seq[u]:04d}"
        name, profile = rng.choice(sector.projects)
        profile = profile if rng.random() < 0.72 else ""
        if unit.place != "州" and rng.random() < 0.15:
            name = unit.place + name
        if rng.random() < 0.15:
            name = f"{year}年{name}"
        budget = max(100, round(rng.lognormvariate(math.log(80), 1.69) * 100))
        carry = max(1, round(budget * rng.uniform(0.02, 0.3))) if rng.random() < 0.10 else 0
        f = rng.random()
        flag = "01" if f < 0.15 else "02" if f < 0.20 else "09" if f < 0.6 else ""
        carry_text, category = _money(carry) if carry else "", _category(rng, name)
        out["projects"].writerow((code, name, unit.code, _money(budget), carry_text, flag, category, profile))
        progress = _PROGRESS[profile]
        *reported, green_may = _write_budget_reports(
            rng, code, budget, carry, progress, (may, aug), (out, later)
        )
        # Indicator trouble goes with slow spending: a "troubled" project has far more behind indicators.
        troubled = rng.random() < (0.12 if green_may else 0.35)
        p_issue = 0.25 if troubled else 0.02
        for i, spec in enumerate(_pick_specs(rng, sector, rng.choices(range(3, 13), _COUNT_WEIGHTS)[0]), 1):
            ind_code = f"I{i:02d}"
            target = _target(rng, spec, budget, year)
            level1 = "产出指标" if spec.group == 3 and rng.random() < 0.3 else _LEVEL1[spec.group]
            kind = spec.kind if rng.random() < 0.05 else ""
            ind_profile = profile if profile and spec.kind == "cumulative" and rng.random() < 0.5 else ""
            row = (code, ind_code, level1, spec.level2, spec.name, spec.direction, target, spec.unit, kind)
            out["indicators"].writerow((*row, ind_profile))
            values = _indicator_values(rng, spec, target, progress, ends, p_issue)
            for cp, writer, value, ok in zip((may, aug), (out, later), values, reported, strict=True):
                if ok and rng.random() >= 0.03:  # a few indicator rows are left blank by the unit
                    writer["indicator_reports"].writerow((cp, code, ind_code, *value))


def _category(rng: random.Random, name: str) -> str:
    if rng.random() < 0.7:
        if "建设" in name or "改造" in name or "修缮" in name or "治理" in name:
            return "基本建设"
        if "采购" in name or "购置" in name:
            return "政府采购"
        if "补助" in name or "补贴" in name or "资助" in name or "救助" in name:
            return "转移支付"
    return rng.choices(_CATEGORIES, (50, 30, 5, 5, 10))[0]


def _write_budget_reports(
    rng: random.Random,
    code: str,
    budget: int,
    carry: int,
    progress: tuple[float, float],
    checkpoints: tuple[str, str],
    writers: tuple[Mapping[str, _Rows], Mapping[str, _Rows]],
) -> tuple[bool, bool, bool]:
    """Write the May and August project rows; returns (reported in May, reported in August, green in May)."""
    light_may = rng.choices((0, 1, 2), (74, 16, 10))[0]  # 0 green, 1 yellow, 2 red (r = E / P)
    light_aug = light_may if rng.random() < 0.6 else rng.choices((0, 1, 2), (82.5, 10.5, 7))[0]
    cap, executed, reported = budget + carry, 0, [True, True]
    for c, light in enumerate((light_may, light_aug)):
        nothing = light == 2 and c == 0 and rng.random() < 0.15  # nothing spent by the end of May
        ratio = 0.0 if nothing else rng.uniform(*_BUDGET_RATIO[light])
        executed = min(cap, max(executed, int(budget * progress[c] * ratio)))
        if rng.random() < (0.015, 0.01)[c]:
            reported[c] = False  # not reported at this checkpoint
            continue
        f = rng.random()
        forecast = (
            "" if f < 0.25 else _money(cap if f < 0.8 else max(executed, int(cap * rng.uniform(0.8, 0.99))))
        )
        writers[c]["project_reports"].writerow((checkpoints[c], code, _money(executed), forecast))
    return reported[0], reported[1], light_may == 0


def _pick_specs(rng: random.Random, sector: _Sector, n: int) -> list[_Spec]:
    """n distinct indicators: a quantity, a quality, a benefit and a satisfaction one, then a weighted mix."""
    wanted = [0, 1, 5] if n == 3 else [0, 1, 4, 5, *rng.choices(range(6), _EXTRA_GROUP_WEIGHTS, k=n - 4)]
    chosen: list[_Spec] = []
    for g, k in enumerate(map(wanted.count, range(6))):
        pool = sector.pools[g]
        if k == 1:
            chosen.append(rng.choice(pool))
        elif k:
            chosen.extend(rng.sample(pool, min(k, len(pool))))
    if len(chosen) < n:
        rest = [s for pool in sector.pools[:5] for s in pool if s not in chosen]
        chosen.extend(rng.sample(rest, n - len(chosen)))
    chosen.sort(key=lambda s: s.group)
    return chosen


def _target(rng: random.Random, spec: _Spec, budget: int, year: int) -> str:
    if spec.kind == "cumulative":
        # Bigger projects deliver more: scale the typical range by √(budget / mean budget).
        value = max(
            spec.span[0], round(rng.randint(*spec.span) * min(2.0, max(0.15, math.sqrt(budget / 33000))))
        )
        step = 10 ** max(0, len(str(value)) - 2)  # two significant digits: 123456 -> 120000
        return str(round(value / step) * step)
    if spec.kind == "milestone":
        return f"{year}-{rng.choice(spec.targets)}"
    return _money(budget) if spec.targets[0] == "@" else rng.choice(spec.targets)


def _indicator_values(
    rng: random.Random,
    spec: _Spec,
    target: str,
    progress: tuple[float, float],
    ends: tuple[dt.date, dt.date],
    p_issue: float,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(actual, forecast, possibility, causes, cause_text, measures) at May and at August."""
    r = rng.random()
    state_may = 0 if r >= p_issue else 1 if r < p_issue * 0.6 else 2  # 0 on track, 1 slightly behind, 2 badly
    state_aug = 0 if state_may and rng.random() < 0.5 else state_may
    rows: list[tuple[str, ...]] = []
    done: dt.date | None = None  # milestones: the day it is (or will be) done, None if not this year
    due = dt.date.fromisoformat(target) if spec.kind == "milestone" else dt.date.min
    if spec.kind == "milestone":
        if state_may == 0:
            done = due - dt.timedelta(days=rng.randint(0, 40))
        elif rng.random() < 0.8:
            done = due + dt.timedelta(days=rng.randint(5, 75))
    previous = 0
    for c, state in enumerate((state_may, state_aug)):
        behind = state > 0
        if spec.kind == "cumulative":
            ahead = state == 0 and rng.random() < 0.06  # ahead of schedule (blue)
            pace = rng.uniform(1.2, 1.8) if ahead else rng.uniform(*_PACE[state])
            previous = max(previous, round(int(target) * progress[c] * pace))
            actual = str(previous)
        elif spec.kind == "milestone":
            actual = done.isoformat() if done and done <= ends[c] else ""
            behind = due < ends[c] and (done is None or done > due)
        elif spec.kind == "qualitative":
            actual = _QUALITATIVE[state]
        elif spec.group == 5 and (c == 0 or rng.random() < 0.65):
            actual, behind = "", False  # satisfaction survey not done yet
        else:
            actual = _level_value(rng, spec, float(target), state)
        final = "达成目标" if spec.kind == "qualitative" else target
        if behind:
            cause = rng.choice(tuple(_CAUSES))
            possibility = rng.choice(("有可能", "有可能", "确定能"))
            if state == 2 and rng.random() < 0.2:
                possibility = "完全不可能"
            forecast = final if rng.random() < 0.5 else ""
            rows.append((actual, forecast, possibility, cause, _CAUSES[cause], rng.choice(_MEASURES)))
        else:
            possibility = "确定能" if rng.random() < 0.9 else ""
            rows.append((actual, final if rng.random() < 0.4 else "", possibility, "", "", ""))
    return rows[0], rows[1]


def _level_value(rng: random.Random, spec: _Spec, target: float, state: int) -> str:
    """A level actual: met in the indicator's direction (state 0), within 5 % (1) or further off (2)."""
    if target == 0:
        return "0" if state == 0 else str(rng.randint(1, 3))
    higher = spec.direction in "≥>="
    if state == 0:
        if spec.direction == "=":
            return _fmt(target)
        if not higher:
            return _fmt(target * rng.uniform(0.6, 0.99))
        value = target * rng.uniform(1.01, 1.1)
        return _fmt(max(target, min(value, 100.0)) if spec.unit == "%" else value)
    miss = rng.uniform(0.006, 0.045) if state == 1 else rng.uniform(0.07, 0.3)
    return _fmt(target * (1 - miss if higher else 1 + miss))
