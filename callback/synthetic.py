"""Synthetic but realistic district data, for the demo, the tests and the benchmarks.

A district of about forty departments and twenty towns handles a few hundred kinds of item
from June to September; volumes are skewed (a few units and items carry most cases), windows
work office hours on working days while online channels never close, and applicants have
Chinese names, companies and telephone numbers. An optional share of rows is messy in every
way real exports are, each mess counted so that tests can check the importer's answer.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

DISTRICT_CODE = "330106"

DEPARTMENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("区市场监督管理局", ("个体工商户设立登记", "个体工商户变更登记", "个体工商户注销登记",
                        "有限责任公司设立登记", "有限责任公司变更登记", "企业注销登记",
                        "食品经营许可", "食品经营许可变更", "药品零售企业许可", "营业执照补领")),
    ("区人力资源和社会保障局", ("社会保障卡申领", "社会保障卡补换", "失业登记", "就业登记",
                              "城乡居民基本养老保险参保登记", "养老保险关系转移", "退休申请",
                              "工伤认定申请", "职业技能鉴定", "人才引进落户审核")),
    ("区公安分局", ("居民身份证申领", "居民身份证换领", "户口迁移", "出生登记", "居住证申领",
                   "机动车驾驶证换证", "出入境证件申请", "无犯罪记录证明")),
    ("区自然资源和规划分局", ("建设用地规划许可", "建设工程规划许可", "不动产测绘成果审核",
                             "农村宅基地审批")),
    ("区不动产登记中心", ("不动产首次登记", "不动产转移登记", "不动产抵押登记",
                         "不动产变更登记", "不动产权证书补发", "不动产登记资料查询")),
    ("区住房和城乡建设局", ("建筑工程施工许可", "商品房预售许可", "住房租赁备案",
                           "公共租赁住房申请", "建筑业企业资质审批", "竣工验收备案")),
    ("区民政局", ("结婚登记", "离婚登记", "婚姻登记证补领", "最低生活保障申请",
                 "残疾人两项补贴申请", "养老机构备案", "社会组织成立登记")),
    ("区卫生健康局", ("医疗机构执业登记", "医师执业注册", "公共场所卫生许可",
                     "出生医学证明补发", "生育登记")),
    ("区教育局", ("民办学校设立审批", "教师资格认定", "义务教育入学登记", "学籍转入")),
    ("区税务局", ("发票领用", "税务登记", "个人所得税汇算", "增值税申报", "完税证明开具")),
    ("区医疗保障局", ("医保参保登记", "异地就医备案", "医疗费用零星报销", "大病保险申请")),
    ("区交通运输局", ("道路运输经营许可", "出租汽车驾驶员证", "道路货物运输证年审")),
    ("区城市管理局", ("户外广告设置许可", "城市道路占用许可", "建筑垃圾处置核准",
                     "燃气经营许可")),
    ("区生态环境分局", ("建设项目环评审批", "排污许可", "辐射安全许可")),
    ("区文化和广电旅游体育局", ("娱乐场所经营许可", "互联网上网服务营业场所许可",
                              "旅行社设立许可", "演出经纪机构许可")),
    ("区农业农村局", ("农药经营许可", "兽药经营许可", "种子生产经营许可", "农村土地承包经营")),
    ("区商务局", ("对外贸易经营者备案", "单用途预付卡备案", "再生资源回收备案")),
    ("区退役军人事务局", ("优待证申领", "退役士兵安置", "伤残抚恤申请")),
    ("区司法局", ("法律援助申请", "公证机构执业", "人民调解申请")),
    ("区财政局", ("政府采购供应商登记", "会计代理记账许可")),
    ("区应急管理局", ("危险化学品经营许可", "烟花爆竹零售许可", "安全生产许可")),
    ("区水利局", ("取水许可", "河道管理范围内建设项目审批", "水土保持方案审批")),
    ("区林业水利局", ("林木采伐许可", "林地使用审核")),
    ("区消防救援大队", ("公众聚集场所投入使用前消防安全检查", "消防设计备案")),
    ("区残疾人联合会", ("残疾人证办理", "残疾人就业补贴")),
    ("区档案馆", ("档案查阅", "婚姻档案查询")),
    ("区气象局", ("防雷装置设计审核", "升放气球活动许可")),
    ("区烟草专卖局", ("烟草专卖零售许可", "烟草专卖零售许可延续")),
    ("区住房公积金管理中心", ("公积金提取", "公积金贷款申请", "公积金缴存登记")),
    ("区统计局", ("统计调查项目审批", "统计执法检查")),
    ("区机关事务管理局", ("公务用车备案",)),
    ("区科学技术局", ("高新技术企业认定", "科技型中小企业评价")),
    ("区经济和信息化局", ("工业企业技术改造备案", "企业投资项目备案")),
    ("区发展和改革局", ("企业投资项目核准", "固定资产投资项目节能审查")),
    ("区人民防空办公室", ("人防工程建设审批", "防空地下室易地建设审批")),
    ("区审计局", ("审计结果公告查询",)),
    ("区地方金融监督管理局", ("小额贷款公司设立审核", "融资担保公司年审")),
    ("区邮政管理局", ("快递业务经营许可",)),
    ("区民族宗教事务局", ("宗教活动场所登记",)),
    ("区总工会", ("困难职工帮扶申请", "工会法人资格登记")),
)  # fmt: skip

TOWNS = (
    "北山街道", "西溪街道", "灵隐街道", "翠苑街道", "文新街道", "古荡街道", "西湖街道",
    "留下街道", "转塘街道", "蒋村街道", "三墩镇", "双浦镇", "东新街道", "文晖街道",
    "潮鸣街道", "米市巷街道", "湖滨街道", "清波街道", "南星街道", "紫阳街道",
)  # fmt: skip
# Town-level items handled at each town's 便民服务中心.
TOWN_ITEMS = ("居住证明开具", "计划生育服务证明", "城乡居民医保参保", "老年优待证办理",
              "高龄津贴申请", "临时救助申请", "独生子女父母奖励", "农村建房审批")  # fmt: skip
ACTIONS = ("申请", "咨询", "补办")

CHANNELS = (("窗口", 0.45), ("网上", 0.22), ("掌上", 0.27), ("就近", 0.05), ("邮寄", 0.01))
MOBILE_PREFIXES = tuple(
    [f"13{d}" for d in range(10)]
    + ["145", "147", "150", "151", "152", "153", "155", "156", "157", "158", "159"]
    + ["166", "172", "173", "175", "176", "177", "178"]
    + [f"18{d}" for d in range(10)]
    + ["190", "191", "193", "195", "196", "197", "198", "199"]
)

HEADERS = {
    "zh": ("办件编号", "事项名称", "事项编码", "实施部门", "所属镇街", "申请人", "申请人类型",
           "联系人", "联系电话", "办结时间", "办理渠道"),
    "en": ("case number", "item", "item code", "unit", "town", "applicant", "applicant type",
           "contact", "phone", "handled at", "channel"),
}  # fmt: skip

#: Every kind of mess, and whether a row with it must be rejected by the importer.
MESSES: dict[str, bool] = {
    "fullwidth_phone": False,
    "spaced_phone": False,
    "plus86_phone": False,
    "local_landline": False,
    "extension": False,
    "several_phones": False,
    "fake_phone": False,
    "excel_serial_date": False,
    "slash_date": False,
    "chinese_date": False,
    "missing_case_no": True,
    "bad_date": True,
    "missing_unit": True,
}


@dataclass
class DistrictStats:
    rows: int = 0
    messes: Counter[str] = field(default_factory=Counter)

    @property
    def expected_rejected(self) -> int:
        return sum(n for kind, n in self.messes.items() if MESSES[kind])


def _zipf_weights(n: int, s: float, rng: random.Random) -> list[float]:
    weights = [1.0 / (rank**s) for rank in range(1, n + 1)]
    rng.shuffle(weights)
    return weights


class District:
    """A seeded synthetic district; ``rows()`` yields export rows in handled-at order."""

    def __init__(self, seed: int = 1, year: int = 2018, messy: float = 0.0) -> None:
        self.rng = random.Random(seed)
        self.year = year
        self.messy = messy
        self.stats = DistrictStats()
        rng = self.rng
        self.units: list[tuple[str, str, str]] = []  # (unit, item, item code)
        for unit_index, (unit, items) in enumerate(DEPARTMENTS):
            for item_index, item in enumerate(items):
                for action_index, action in enumerate(ACTIONS):
                    name = item if action_index == 0 else f"{item}{action}"
                    code = f"{unit_index + 1:02d}{item_index + 1:02d}{action_index}"
                    self.units.append((unit, name, f"3301{code}"))
        for town_index, town in enumerate(TOWNS):
            for item_index, item in enumerate(TOWN_ITEMS):
                self.units.append((town, item, f"3302{town_index:02d}{item_index:02d}0"))
        self.weights = _zipf_weights(len(self.units), 1.05, rng)
        self.people, self.companies = _names(seed)
        days = []
        day = date(year, 6, 1)
        while day <= date(year, 9, 30):
            days.append(day)
            day += timedelta(days=1)
        self.days = days
        self.day_weights = [1.0 if d.weekday() < 5 else 0.15 for d in days]

    def mobile(self) -> str:
        while True:
            number = self.rng.choice(MOBILE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"
            tail = number[3:]
            if len(set(tail)) > 2 and tail not in ("12345678", "00000000"):
                return number

    def landline(self) -> str:
        return f"0571-{self.rng.choice('2345678')}{self.rng.randrange(10**7):07d}"

    def rows(self, count: int) -> Iterator[list[str]]:
        rng = self.rng
        picks = rng.choices(range(len(self.units)), self.weights, k=count)
        dates = sorted(rng.choices(self.days, self.day_weights, k=count))
        channel_names = [c for c, _ in CHANNELS]
        channel_weights = [w for _, w in CHANNELS]
        for serial, (pick, day) in enumerate(zip(picks, dates, strict=True), start=1):
            unit, item, code = self.units[pick]
            channel = rng.choices(channel_names, channel_weights)[0]
            if channel == "窗口" or channel == "就近":
                minutes = rng.randrange(8 * 60 + 30, 17 * 60 + 30)
            else:
                minutes = int(rng.triangular(0, 24 * 60 - 1, 15 * 60))
            handled = datetime(day.year, day.month, day.day, minutes // 60, minutes % 60,
                               rng.randrange(60))  # fmt: skip
            town = unit if unit in TOWNS else rng.choice(TOWNS)
            if rng.random() < 0.18:
                applicant, kind = rng.choice(self.companies), "法人"
                contact = rng.choice(self.people)
            else:
                applicant, kind, contact = rng.choice(self.people), "个人", ""
            phone = self.mobile() if rng.random() < 0.86 else self.landline()
            if rng.random() < 0.04:
                phone = f"{phone}/{self.mobile()}"
            row = [
                f"{DISTRICT_CODE}{day:%Y%m%d}{serial:07d}",
                item,
                code,
                unit,
                town,
                applicant,
                kind,
                contact,
                phone,
                handled.strftime("%Y-%m-%d %H:%M:%S"),
                channel,
            ]
            if self.messy and rng.random() < self.messy:
                self._mess(row, handled)
            self.stats.rows += 1
            yield row

    def _mess(self, row: list[str], handled: datetime) -> None:
        kind = self.rng.choice(list(MESSES))
        self.stats.messes[kind] += 1
        mobile = self.mobile()
        if kind == "fullwidth_phone":
            row[8] = mobile.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
        elif kind == "spaced_phone":
            row[8] = f"{mobile[:3]} {mobile[3:7]}-{mobile[7:]}"
        elif kind == "plus86_phone":
            row[8] = self.rng.choice(("+86 ", "0086", "+86-")) + mobile
        elif kind == "local_landline":
            row[8] = self.landline()[5:]
        elif kind == "extension":
            row[8] = self.landline() + self.rng.choice(("转", "-", " ext. ")) + "8012"
        elif kind == "several_phones":
            row[8] = self.rng.choice(("/", ",", ";", "、")).join((mobile, self.landline()))
        elif kind == "fake_phone":
            row[8] = self.rng.choice("0123456789") * self.rng.choice((8, 11))
        elif kind == "excel_serial_date":
            serial = (handled - datetime(1899, 12, 30)).total_seconds() / 86400
            row[9] = f"{serial:.6f}"
        elif kind == "slash_date":
            row[9] = f"{handled.year}/{handled.month}/{handled.day} {handled:%H:%M}"
        elif kind == "chinese_date":
            row[9] = f"{handled.year}年{handled.month}月{handled.day}日"
        elif kind == "missing_case_no":
            row[0] = ""
        elif kind == "bad_date":
            row[9] = self.rng.choice(("2018-13-45", "待定", "2018-02-30"))
        elif kind == "missing_unit":
            row[3] = ""


def _names(seed: int) -> tuple[list[str], list[str]]:
    try:
        from faker import Faker
    except ImportError:  # the demo extra is not installed: a small fixed pool will do
        family = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
        given = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红鹏辉建国志文"
        rng = random.Random(seed)
        people = [rng.choice(family) + "".join(rng.choices(given, k=rng.choice((1, 2))))
                  for _ in range(3000)]  # fmt: skip
        companies = [f"杭州{rng.choice(given)}{rng.choice(given)}科技有限公司" for _ in range(800)]
        return people, companies
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    people = [fake.name() for _ in range(3000)]
    companies = [fake.company() for _ in range(800)]
    return people, companies


def write_district(
    path: str | Path,
    count: int,
    seed: int = 1,
    year: int = 2018,
    messy: float = 0.0,
    encoding: str = "utf-8",
    headers: str = "zh",
) -> DistrictStats:
    """Write ``count`` cases to a CSV or XLSX file (by its suffix) and return what was written."""
    path = Path(path)
    district = District(seed=seed, year=year, messy=messy)
    header = list(HEADERS[headers])
    if path.suffix.lower() == ".xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet("办件明细")
        sheet.append([f"{year}年6月至9月办件明细"])  # a title row above the header, as exported
        sheet.append(header)
        for row in district.rows(count):
            sheet.append(row)
        book.save(path)
    else:
        with path.open("w", encoding=encoding, newline="") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows(district.rows(count))
    return district.stats
