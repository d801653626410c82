"""Rebuild the scene-text calibration subset (IIIT 5K-word, test split) from a checkout of its repository.

    python bench/data/get_scene_text.py CHECKOUT [--out bench/data/scene_text]

CHECKOUT is a clone of https://github.com/gsy-cv/IIIT5K (or its bare git directory): the files are
read from the pinned commit with git, so the checkout may be at any commit that contains it. The
subset is 200 cropped word images of the test split, chosen without looking at them: the test
annotation (``testCharBound.mat``, the IIIT release's case-sensitive transcriptions) in its own order,
words of at least three characters, every (n/200)-th one. Every file read is checked against the
SHA-256 recorded below; the output is ``images/*.png`` plus ``labels.tsv`` (file, label, sha256,
source path). bench/data/README.md ("Scene text (OCR)") says where the data comes from and its terms.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
from pathlib import Path

REPOSITORY = "https://github.com/gsy-cv/IIIT5K"
COMMIT = "3d361ac71f783af2f1af3f3e9185a06993d45e3d"
ANNOTATION = "testCharBound.mat"
ANNOTATION_SHA256 = "2b8c3e9c24a0c5a499911224b5a68a3cae5185ba87ad926653c84de273ade3dc"
SUBSET_SIZE = 200
MIN_CHARS = 3
DEFAULT_OUT = Path(__file__).resolve().parent / "scene_text"

# source path -> (label, sha256 of the PNG at COMMIT); filled from the pinned commit, checked on every rebuild
MANIFEST: dict[str, tuple[str, str]] = {
    'test/1002_1.png': ('PRIVATE', 'cba5714235479423bfdc055ea59df9d8a5bc61131fa167840608b2c683203a48'),
    'test/101_3.png': ('UNIVERSAL', '48ec6398c91c87fc3b089c18828929e18d6a204084f2f6bf9e9b3e628441074f'),
    'test/1023_5.png': ('YOU', '2256eb91b7e848314c2df7a9872988464a7bd113f26ba2c63a86c5cbe80b4a75'),
    'test/102_1.png': ('Gypsy', '716a09204f8d12082d77e6a7332736a50994d454e1c5156248e90c8fbb22f54f'),
    'test/1044_4.png': ('THE', 'd1f375dd10338bee8507482167a71cd7b94f4be9461d16bcc77e8c9108e6fe70'),
    'test/1049_7.png': ('wwwTopStockResearchcom', '374562819115001f8ceda067fb5c17328ef21f231e7063e48ae494fdf58ee565'),
    'test/1059_1.png': ('FREE', 'e52da8faf03a32608d794accd677a1922164abbafdc5b3f44573f390e2ae6399'),
    'test/1065_2.png': ('200', '85d8da113a59d15ed823d614355f559e37b63992fd2308b0517f0905d5f27af2'),
    'test/108_1.png': ('State', 'bf08c9bee5ab83f0ece6ae14595ce808a2aa33f79dc86ca44a1a1c1e8e44b33e'),
    'test/1095_1.png': ('Venus', '0fce845a349fc1748f419c1bbcf17501844f39cd72886093308684cc8c874346'),
    'test/10_1.png': ('ipad', '30b08579221d5f5e5d25bbdde4bc65295f4700ec991d542f36e614cd99262817'),
    'test/114_7.png': ('Gases', 'b32bf5844e4c1262a1ddedff10d7e7a59a8b9d909737f3751b767de41731c80c'),
    'test/122_8.png': ('Friend', '4a7664317d082b2c17f73dd13cb0e193770c818b5581d04920b420be50ab82dc'),
    'test/134_3.png': ('Baby', 'bf1969b6499004347581c9f368413f7d6d4f45e13f08c76a3d5498f0515092c2'),
    'test/137_9.png': ('3RD', '475b7c1f388aee02ca842c3b0ca84dc56bbba2a54954ee37ec3423a5d6bbec30'),
    'test/138_7.png': ('EAGLE', '28af044c7c13b6f35f1867b2b95b08f01aaf7e242ee3eaa16e48cb0d1ad4cb10'),
    'test/144_4.png': ('working', 'e00c67404128e13f56704970a331ab74e62357c2ef1f7e221d4b45e2d0373127'),
    'test/149_6.png': ('there', '2d98b447bcb33b7e8160bb175482e71a9a8c549ab9cd1d6590d5cfccf97abf37'),
    'test/155_2.png': ('BIKE', '636556a9f5dcbcdd1ad7fb984233a1c5987f29fae80cce78cce5fae3743cb0df'),
    'test/162_4.png': ('BROWN', '278e50477fc5b3deb9d78c1ee8007b1bf5a3048a4ed90d5b8131ef5b2bd6ed32'),
    'test/170_9.png': ('way', '8e9b5ef1fd01c779b762a0daa3a68c95487d84e650420eba4bba6f89badca159'),
    'test/179_2.png': ('YOU', 'b28be1da73c769ad6510b8867c5753dd77ceee4c3743cf4b72cd65db349519c0'),
    'test/187_6.png': ('Youre', 'de5ec175d5ab01870e85a9d163e104b03832ac0ee453b84ef64c11a74b7cd5df'),
    'test/197_4.png': ('India', '2858738fd529f0bdf97d8447b9311a021192a4389a5cdb73b6c4b162c25f83e1'),
    'test/2005_1.png': ('NANCY', 'f9c6c95607ef13a5d918eee2f6ccbcbc1fb102586059e85386fa291475b9b9fe'),
    'test/2017_10.png': ('Ltd', 'a20e74a56034b25d250ce3cbf0df987e827e4f839c22540282404d055716438f'),
    'test/2021_4.png': ('Lago', 'c7897c3cea41a0a3049cdbe495b2c64467200f34377c60ec0085b8f9d2eeaa2f'),
    'test/2033_6.png': ('Steel', '36ed52d47b534729ec36fe688a647763234e5baf0b40d6ac14b13dee7802cea7'),
    'test/2045_3.png': ('269', '5dbe2886d9345e9355a7bb7e50a46fe782eb12040445abfb49cb1fd08c3c5728'),
    'test/2055_1.png': ('enjoy', '8014cf73d7db42f1ee4b8c4b69950b2534120f6f5f28a222bfa1130ab7bd1479'),
    'test/2055_7.png': ('Currency', 'bc5e08ad6331dac802da233e82161a06cab9563fe969cb9cf21e22f9a717f72d'),
    'test/2061_1.png': ('MAPLE', '5c28ed18ad5a23050042823911b4c2e5dd1b4b322c9d37e48857a5a59f00f690'),
    'test/2074_1.png': ('Lindsay', '6dc623712d7b66e0d6c4aeb6dcc2856dca706492ef8740365c012d80fb55f889'),
    'test/207_13.png': ('else', 'cccdd3b217f8cbfa94c7514e6a7e72b328232442dfb3186dd381a62fe3207c19'),
    'test/2084_3.png': ('Arntsen', '4b6e18d3ee386e685eab30bb1095c5f64bd0cc547d101c711598759c86384e0d'),
    'test/2092_3.png': ('WECKESSER', '543c74bdce8bd90bbd6b01b456d81ed72e9887900e2acc27d21158805cc59d78'),
    'test/209_4.png': ('India', '105a76daeda8c904eaf22c902d2dbb23e2bff70c4e819f5b0b210074a6fa3eb7'),
    'test/2109_2.png': ('SANYO', 'ebd573dec6babaf152f47bcbf1fde7832305ece3c9a2c2d633ef424c983a8f5b'),
    'test/2119_4.png': ('Imaizumi', '115b020e392af3d0c806291520fda73498ac6ac8da486f4a3dd828565545bff2'),
    'test/2128_2.png': ('Lee', 'c2049b40c25184a7d14d9fa86c78d635721f986d1ee633b12e0b673452b9ed4a'),
    'test/2144_3.png': ('CLUB', '6caecaf8459c7dd5384c10efddd65dd6aa7f22530b047a5ff53ba26182c1f573'),
    'test/2165_2.png': ('nbnovelty', '5da3889507adf374ba5928bb4303595444c85d70a46e0838f166495dc64f0938'),
    'test/2171_7.png': ('BITU', '6650cadbd3f7441cf5eda7c1c64ad7b08afac1c88e164554eada9b210d47cf07'),
    'test/2185_1.png': ('Milagro', '0c4b12df0e0559b71150b1b3d8919f65deeb8d676f58250910d6c9c1bc864330'),
    'test/219_3.png': ('Your', '81f30e3f5036b6e9c8fc767f1aa0d197d0150917f478fca5cc8a534e47a30435'),
    'test/2201_7.png': ('Lgdney', '00a71054f7b264a75c9a478c770f7b6b85210859c66a6f9e18ac4d6d8e8fae2d'),
    'test/2210_1.png': ('CORRESLAW', '30038b2cf1f4f9bc9470d788531e4ebd2e79c1dd8768a842660a4f044c7d414c'),
    'test/222_1.png': ('GIVENCHY', '2a7d2b0de87c7013d1110e243e974e346bf9f64d16f0a93c6cf8563b6f5a8451'),
    'test/2244_1.png': ('Day', '18173bfaad1478aba95230502d0e68c60603346d2a2c5320c8b57305bb53ae76'),
    'test/2254_8.png': ('TAKOMA', '7e3e37d7c5b443e79159e451308988160063875aab83c7cc1c7e74b1e32a6c0f'),
    'test/2262_2.png': ('CLONES', '7f4c855b70a4188a05fac9937ee35e8189e0b081bb9bba464a7514c5bff181d8'),
    'test/2291_3.png': ('HOUSE', 'f2b9b7900f281ba3fa7d7e415320d9e053b9897d22a3946ea32b1e3b3dce4150'),
    'test/2298_5.png': ('VILLAS', '2cfe8261be1818dcb923720d4b864683531c6cb8bbc0f565a5013b8884adaa55'),
    'test/230_6.png': ('than', '836e95817b3c6b45692462a1e921290f905e268dc00dce25599443016d95bc1d'),
    'test/2319_8.png': ('OURSELVES', 'b1c97fe702385d583755ee482f4a27001de2357571f5ae7ccec7271a796b6224'),
    'test/2332_2.png': ('COTTAGE', 'c2567be3f72a010966c8a188474b382453b5bf2237cd9660516a05511ea8ac7e'),
    'test/2342_4.png': ('Visits', '20999a454478ff97f1752d51c25a298c9ad3082df8b45a0d018acc09a5fc4f60'),
    'test/2365_1.png': ('awayside', 'e188cf432fe820d4fb0ecf0842d137136e5835f502a81fa624b2834d703f964c'),
    'test/2383_3.png': ('Play', '3fd6c048f9759f0f48c4e7bd23e6dce74faf26a0e5772cd4e3fb7bb01c2dd4df'),
    'test/2403_1.png': ('HOUSE', '3be5d736a986975220f122800f64a45233271625ababff664765dff7bc2fa3b9'),
    'test/2416_1.png': ('Dingle', 'fdba2e863f5475deb4fecf0c7052393d32349dc61ffc5531af8b69a68e334a77'),
    'test/2430_1.png': ('625', '621ead0483ba8c5b747c14ac154e5716f2ca7737b4c94aae61efb1cba3119377'),
    'test/2447_1.png': ('PROSPECT', '941255398d8d5cfc6922dad408612026b3cf9777cff2294df9a888fb0ce57b0e'),
    'test/245_4.png': ('AVCILAR', 'f561b076768224cd09d99008f82a7b500c3522e8fe6887912316f2246f7c93a8'),
    'test/2469_2.png': ('Lookout', '66642068b826ebcf6dd22d0183f55708838492e8e20b8d19b7f0d37148fad754'),
    'test/249_2.png': ('LED', 'c8e229d733fb6c3e703b33800d964d0aa4f2ae47a9c1dc1ada00fdf2845d5a78'),
    'test/2512_4.png': ('Mum', '7d557460875b9d838eed5095390c52908d5aa5d36271df8a620fd44df8e0325d'),
    'test/2523_14.png': ('MILL', 'e261a160d2ca2f6cd20428eeadf24967ccb886d69d73970c0341ba8c7b1df300'),
    'test/2523_28.png': ('GARDEN', '444aa975a855828a8bde683d4a086e87664b131052e0ebab6d00f62b06d4d484'),
    'test/2524_18.png': ('WELLFIELD', '2bae58b164a4e8c411872ae5b4145f3860512957cc1686c1cd636cc56dd3c3c4'),
    'test/2524_3.png': ('ROSE', 'b426f9d028402545e4b7be3b78c1aec0f3706d77f05786bc4697e5d177df9ab0'),
    'test/2524_41.png': ('HOUSE', 'b60e873cea121be5f6301685dd0f75e9d54fde35316387ed72b994fb5101e9c7'),
    'test/2528_4.png': ('Cottage', '2635c090cef43af5a47a0a0dc3260c10fa8d827aeb8af349c5e1115191eb614d'),
    'test/2530_8.png': ('GRANADO', '25511aa14594058545bc952dd74df15f6da5d7574f793611f42d0843a1a080ff'),
    'test/253_1.png': ('HUA', 'cc1ea517d048762012ab97e4fdcd0f03f1bf86dbcf422e0b3d13e9dbcefcef15'),
    'test/2551_2.png': ('LOUISE', 'e11e25e65fb12f4c7ffaebb68d0f5f19984172af8018492ad1e5ccfa87a3b5fc'),
    'test/2572_3.png': ('design', '8b12bc6c424c0b416e2a115dbf16e33d709a2f79985b1fdafad73c45cf731e7b'),
    'test/257_4.png': ('LARGE', '8cc1d6aca525a3b2b9500ebed7cfbf4d1eb45719330e5a76c3de8084e484c12a'),
    'test/2597_13.png': ('END', '7a9e0786b4c6773900a7231d7c4cfdea683fbf453472bbc8f4f6109fe7067c91'),
    'test/2609_1.png': ('Let', '4444d75ae97e2927354d9ca0d08f7bef2bdd33c296f5a8c2ac54e2dc61c123ef'),
    'test/2611_8.png': ('Child', 'a46681679a2f23afddb697c4c85e9cc5aa9301ede7e4ccf941dd2c869842334e'),
    'test/261_2.png': ('AIRPORT', '45a1fda3ebfb8fecab5e3f7eb6413c413cd02336cef0f6c80191339d954e58a5'),
    'test/2624_14.png': ('HARDWICK', '5b0e2d3de1cc147d1026786c7936c490304b87e13beaa6081eef86820d31ca49'),
    'test/2624_4.png': ('Membury', 'e2d147f62aa12815e9306043caa3f28550dfca4b6c7bd0397c8439421f88b557'),
    'test/272_4.png': ('first', 'a43fd1afd2e5885a888ea19810a358d654f34a680ca253330ebed98dd9e75c71'),
    'test/281_1.png': ('Hours', '8a0e5319cb12756f28ebf4d46f5031cfe967c8b90b672d8f9bfb8373054a535d'),
    'test/285_4.png': ('Chennai', '177a09d8b09db768efe6363e04ca7e34762a00aee949709e1ac282b422d48bca'),
    'test/291_3.png': ('THROW', 'fe980b697cb2c52f2c33d2f06147b9c03d1a43a9a7f1215b8d7b617145f5ed81'),
    'test/296_6.png': ('BILLBOARD', '21e1b7d6f76afd2607aafa5ec647faeff91ad916b43301bf3314008574b8ce48'),
    'test/307_1.png': ('masterfile', '8a04d0c5c4b8a3663e602dbab4690e9e6a8e667dee9a9b4748e6112eca7660db'),
    'test/312_1.png': ('Aluontop', '84ba3b680b9b909140982bc3a2f3f4b544bf0d9562006ea5f14bf7c0e31cca17'),
    'test/321_4.png': ('SHOES', '9236a6295bc8b75999206e79bf9c74ddc6393e697c44cc7d24258d19bbfe0351'),
    'test/325_11.png': ('per', '12aec25dfebad6853d8e69a0f8a80fdbee7c4ee213d2bd3dd800ebfbaa66b12f'),
    'test/325_4.png': ('Ads', 'be5ff102a9cb0d274aae2e166d789556ed468a0ab83801e2126852945cc70bf6'),
    'test/328_15.png': ('cost', '53cd6f49bbb115965b5a41a56b6ebffff297db98378119b09639c7a840f3fda0'),
    'test/329_5.png': ('low', '047fed2569dde1d34bb0a965c1bb67ceb69e2e21d3345f99e9128dec22a677e9'),
    'test/337_2.png': ('wwwClipartOfcom50027', 'fe9d6da293fef0b10428f9584ee01e27982faccc587e5534e6eefa5a32b670c1'),
    'test/340_1.png': ('Thank', 'ae2f8754f179271248fe115dfe629f0c38224f4c561836d4a075bd6c3d10f8e1'),
    'test/34_19.png': ('hit', 'c31569d58fff91c8fafd14188e75177745315b6050fab524d01db27852d6f20f'),
    'test/358_2.png': ('BANK', '9cdbbce7577506898269b6387946a444d7e44a91373150c52e9d628f8a7116d4'),
    'test/366_2.png': ('008', '9ac5cd55eac3eaedff8d8114eb6f922c8fe2216bb657dc66af77ce7b5be20ce3'),
    'test/370_1.png': ('KFC', 'cef2e13b14a4832ae4b08c10592006ebd9ad3c7ccc335f406876493bd90cf2ed'),
    'test/37_5.png': ('could', '90e0d019967ff53e802dcdf8f11a58d5235009268b4457ffb6d91ee711a95b3c'),
    'test/392_7.png': ('all', '29e0e802560a096458c77ac8826df93b31f8368edcaf10e65c10bfabdc13abd1'),
    'test/3_4.png': ('MOBILE', '29c8f3d7e275216230e36ac088ae2cfc97261315c72e9fc66cdea8b76213e3cf'),
    'test/405_4.png': ('New', '7f8a67a74d5b2d81a95cae1183130903d297dc1ffb6628a76ece67f43a36a6a4'),
    'test/407_2.png': ('PEAKS', 'fee326ac603ce4b46c5a45818f6848b5a46e06cef7992643a7cacc02f0e085f6'),
    'test/412_1.png': ('ESCAPE', '6c7e5b0fea3b5c691aec12bcb1b89f0506a969ec7ee6b68fa36acb79da495f44'),
    'test/419_5.png': ('Bank', '37c140ae4ffa6af861f3b3cd6355d2d3e02863b56d88cba0f952ffde373c823b'),
    'test/433_6.png': ('Banking', '4d8d2df54e7a09bad17c8337d9bfb4f2b3b03429d2270ea0bab0de0319c6960e'),
    'test/455_2.png': ('Bank', '1ad9f7f27b0f2fb658afaea0abbf68ce091a7d945ced51b86f729ed4a88afdb4'),
    'test/5001_1.png': ('LEGACY', 'a3b25e35ac0256ecf7b9392903ce9571b96f95e3197390aba8c99dcabd626cb6'),
    'test/5007_12.png': ('AXELROD', 'e265227b6f5b83780e50344a7ff2a7867c526e3d3f8db4e714da17fe2f247ebb'),
    'test/5012_5.png': ('SIN', '29eaada167d085fe25308da8f8a9452ee0d0a45da6f7f72bc2dc1f56e113e37e'),
    'test/5018_1.png': ('NATIONS', 'd80ae6754b16336d00f0a96912efd67e31bc1d154ffae29e85fd476149f1e467'),
    'test/5024_12.png': ('Marsalis', 'ca84fe2b2d16f2f967c84765b39d4dbed194e108c1b5ec71f4e4ccc830e41ca3'),
    'test/5027_1.png': ('WILLIS', '45358b69a7d7e94ebc02f9e553af1f698c04b2ced420600b3697ee41799ea181'),
    'test/5030_4.png': ('PINE', '8b37921578cd6c6be5a99e84444b30538cdcb7c0e27d3c0a518b205691ec59ef'),
    'test/5038_3.png': ('HARD', '8bb257de487671c96f38e2f2ad7cc0653717812d9bbef6621085ceff3a81e85c'),
    'test/5042_7.png': ('BEST', 'e2d8e2d4be109a4317e3a1fffc55286f9e097fdd85810941fdaf13690ee8baaf'),
    'test/5044_7.png': ('TILDA', 'a7a2366dc69a8054ea50dc71cc6bc3217321adc5007e41d9a00ce5b73807343b'),
    'test/5051_10.png': ('will', '30aa9154f2e778425bd799f3ef503b9ed91450458ff23d8968668efe25642275'),
    'test/5052_2.png': ('MAN', '1267a2bc1e93de6dd0b93b0940360459244ec5d2a4176d2f5489ec3b166fe7de'),
    'test/5059_1.png': ('DEFY', '711b2d3fef3a7da53f5cce304ad50ddb690a8830abf155dadedc727e66d5887d'),
    'test/5065_1.png': ('POUR', '234c564eef507672f84fb49bf09af92ac8e9ff32c6be36a69d701aec50db0af9'),
    'test/5069_12.png': ('UTROLIGE', '476b2debec213c33ac80b23f3103b74bfe901a3cf8541c42c0c81922155e0bde'),
    'test/5073_10.png': ('Paris', '89f0bab78f792dfd8696cce80882c2ed215de01bc30b0371b33c8a43277a3ee9'),
    'test/5079_1.png': ('WATCHMEN', '590d362001c9d6790ade744e721c0821c00b2bbd36c59fa0c696c7c530e67934'),
    'test/5082_1.png': ('IRON', '590f615166e23cc752eccea591c9007c9f270a2bb6ba8467b898f28fd19469a9'),
    'test/5085_4.png': ('ABOUT', 'e17c1e5dcaaba31997f5b4ae7bf6824bfca3a4c791236d1e6f104ecdf4d7136b'),
    'test/5089_4.png': ('and', '0c22541a218673f0d7a318c4e4537bd45be0e671d6f8047b27378c0130382f0d'),
    'test/5094_2.png': ('AJITH', 'caf93050e31c00645a8de86624c6de745ae04490f4f7a377868b7a38bbf4ae03'),
    'test/5100_2.png': ('MAN', '5f0c7d8b2f018427b1c5696e4da78c4b41c2c0b78895ed7f14f36f770c42862c'),
    'test/5103_6.png': ('SLAVERY', '54747f469bead31b48a8ce678981879b514b08dff2268eef0f444173141275f5'),
    'test/5114_1.png': ('JONES', 'e146da292ad73aa849d9db45a2ab3235ac1d78f128720b3fea2df766d5d75ab6'),
    'test/5119_3.png': ('moon', '8ef4b263af2eb826b9ef670ee8461f93235c31671920f4b9bfeaddabc7585194'),
    'test/5131_1.png': ('ORIGINAL', 'a572947ec3802ad9bec1a19b575073442450661e4dd42979ca250656ce78412a'),
    'test/5135_3.png': ('ROZRA', '4e80536f86ec0ce0d71f21dcf82a6b64351dec51fb7ef481ccf3a38f58bf3447'),
    'test/5138_9.png': ('FROM', 'f18017168fc52f59ae4938a3058eb687905ccc01a8a883ce7a7c5ea74b04c330'),
    'test/5147_1.png': ('Disney', '611d04508a02e827abc2ab1121c7c66048d99aa2ac3310a41331d8a81c791f52'),
    'test/5152_6.png': ('MEGAMIND', 'bb4e653c9a49a96a8b8d45223c3ce927118edc453b0f89826768d89be95238c7'),
    'test/5165_5.png': ('NEEDS', 'c4217c44deea204c19e6f7a4d4b56819971c703f7f0d4bb9b3ffcf13fd9f8590'),
    'test/5172_2.png': ('RULES', 'aa4c49a6304e02fff3db305eca628f5cfe2a2c209fc0481c74a760869e5b30d0'),
    'test/5182_1.png': ('PULP', '1140d79c6ce34842d5a56b9109040659c14744f5f60216696bbfaa29771667fe'),
    'test/5191_3.png': ('WILD', 'fc22f0c448b1279727aea426c33810266fa6a89c00215a31dbcc0d1cc1d83652'),
    'test/5199_2.png': ('HOOD', '667275197c6ac53b0b44b88204ed4ea9d3554b24fd4e0f3610c9ce5ca3d1ee4a'),
    'test/5209_3.png': ('TIDE', '5389741b582d74cf5355ea6ad5efe584ef283a6f0a93b5c60e7753cdb624ada1'),
    'test/5220_1.png': ('DISTRICT', 'd577586276977f250b197a610e9f2fa020f3fba587a21a86f06eed38cc53c954'),
    'test/522_6.png': ('you', 'c3df619dd50850f9ca741ee043ddd3ec4898d2955a9ec3a7b122772e73b311bc'),
    'test/529_26.png': ('PACK', '2a0c8cebb889ded23ea9fc65cd5994e11e13a90803559c14ec50ce79f6149287'),
    'test/532_6.png': ('Prodaja', 'ec4e26cba7c37c3536fc84a658a3913b5a066f6be78ad0c915f06046d131c7c9'),
    'test/546_13.png': ('business', '6ee9cd24295632bdeceb89f0e68714806170be2b894f58bdbb7b91c76c514735'),
    'test/554_1.png': ('Limited', 'ba1529405b04bd21b49ce3ee4a6255378743fe8b02d91ed6875b08793c504651'),
    'test/585_4.png': ('AHEAD', 'f4d5dd3b2fd9096d206cbed2d05eae09c82fd1d55ce291db6bdb4acaf48f2748'),
    'test/591_4.png': ('India', '4dbb92938d42ca41659afdc0cd75637df3cd384a12cc075396346563bf3b7a55'),
    'test/596_7.png': ('viewers', '8a11d4c65adc9ced63e3ae16fe254297ddd92d4f81fb3e1b704d9d8ab9879a44'),
    'test/601_5.png': ('Get', '95c3790fa3d540c76b8b4a221ef7fa80ebecf138815d58271a50af0780d90394'),
    'test/610_6.png': ('LOST', 'ab95b24ae6610778aeabc300433184b06774aaf0680ea7288432ce009038c8cb'),
    'test/629_4.png': ('means', '2bba1e58db721cefeda77769d4ce5aa84f969d736e3784187a367454375a1887'),
    'test/633_4.png': ('MORE', '11c3db2245cd73326ad71a51eee3850ad2c680446ed60efcd15a4935ee2adaa4'),
    'test/64_7.png': ('jeddahphotoblogspotcom', 'add74aad7a227d2c2b627a93e5fcebbee727c2e0ae48abdc555a3fa9906131f5'),
    'test/666_3.png': ('over', 'c55b3cbb5efca7f3fec2f2e4586ac5e21698948f29c2fcb532e649e16e80b5fd'),
    'test/673_10.png': ('zalad', '5dbc1745623fe8b96f29a5d8e6c5e3a24b561cb50d1019d5ea6810f5cd445dec'),
    'test/681_9.png': ('way', 'a510f9313caf349f4aaf63128816a85193726884d73f78c9d8ddf3267193cba5'),
    'test/685_14.png': ('19th', '24544ce67a2dcfde959507be93166f3eb0a9d4da333a0983c90f42f70c635718'),
    'test/68_1.png': ('Find', 'cff7e23882c10022acdbb85dadf98deb6169003dd1ff794ea965f4cb964837cf'),
    'test/697_13.png': ('people', '4fbb0a7466216bd8808b0fc43dc359ae4d08b755797f02ec2a84cbdbd5cefafa'),
    'test/69_2.png': ('LIKE', '8f4919b88820bb90e16a6de004ddd7a59294e457afa69a9632784f742458da14'),
    'test/6_9.png': ('UNIVERSITY', '2ea070d4afa878f03e75ca4d3f4f5cc4e1b704408496ef33e3b7742fa0eada38'),
    'test/712_2.png': ('Your', '336b75a5c98d0420d073f4d814b39408b474d9c14340bbba28ebf7e13ca7f7e9'),
    'test/726_6.png': ('Centre', 'a7ae0f376442e84a8a4f314e998677fe55fa431fbb0a6962c43276e5ee82c040'),
    'test/732_4.png': ('COMPANY', 'ed8835a992f02b7901d6aa574a8adfd16f192424ae1176148651086e20c0fc8c'),
    'test/741_1.png': ('More', '215177bbff3e235cbccf023cd9d4c55232aa235939278dbf691e8ab8cb7a9b46'),
    'test/756_12.png': ('fast', '8abb4a2c9d3524e9aac22e10b8d646f1bd0b1ee4d8dfd22036e8bd9ec2b1e95b'),
    'test/767_2.png': ('Sign', '15899aa39f536d3fca89fc2609490f326c242a6746740bbbb1c4727b53bcb47b'),
    'test/775_1.png': ('webs', '57d01d1cf0a8532e5bc65a3043ff338ea8dcc538e02494cd43bdbddb88e2d9f1'),
    'test/791_14.png': ('BEDS', '0c8e8ce045612af3455ac8993b835fd1f1a041ceb7d73796ff1a5b9aefc1c867'),
    'test/799_5.png': ('Gujarat', '2e06ee000d234db38196b99ba557ef53d9499b9517416c4a4c856979b4f7b6bf'),
    'test/820_1.png': ('TATA', 'cc3a7384dbf59a2c0fe2ff9418629b22c0d806d92a3781c4db7c89cc650fd5aa'),
    'test/831_2.png': ('BANK', '8dc5a3f50b064f46e375445b7ea98663c50527f8c8fba514b4b74b6778329990'),
    'test/846_3.png': ('BLOND', 'a7c9dd3663a440f1b735ea04489dca00a907bd29f79821e425779df673ea371d'),
    'test/854_2.png': ('WELCOME', 'ddf05c19858278825ec4e5996006288e5cbf6b5c1244055cfa2ba8f9e77260e8'),
    'test/857_14.png': ('HARAP', 'bfdd269be69bd8859ee8b5dba98871a42a248e3753a14418954b774e0c0445ff'),
    'test/858_2.png': ('EXIT', 'c0192257ccc18511a77345c7a50031f2933ecb0c3132468b17aa7a1163f37d54'),
    'test/874_3.png': ('Madueno', '05c1641f4cd9b46483a9c0960447559973bfdbe5d201c496a4cb77465b286d7a'),
    'test/882_4.png': ('HOURS', 'c27fce36ff184ad631fbb17a34078f68c489e18e9d739a7146c3068b6ae84b06'),
    'test/893_5.png': ('Cancerca', '94260cfe099adab8e6a71ca07df8bb0760447f06d6b9c4eb2dab8639e2b2aa58'),
    'test/899_1.png': ('Crave', '2e6e8b37f42442d3758396c89ab9df2f5573fa2eeda1d667aa25906c94fe9179'),
    'test/907_6.png': ('Rip', '9fd7abe85e50969b0baa58d6f67e665969b54e97dab35f47b84cdddafcb9fdf8'),
    'test/916_2.png': ('Bank', '37c8251fc6bdc227fcb41717a91e195af54bce3efb40814587175bca384b10ed'),
    'test/923_1.png': ('JALAN', 'c46399eaaa9382948f08f69c8191cd6d1496797560dd74018dc48c5041ebb59e'),
    'test/933_2.png': ('Bank', '824e5e8fd9be13b092ea8bc9897efbd280b00e614688c78a895b21735b25db06'),
    'test/940_5.png': ('BiLLbOARdS', '00bddf44a3116aa9147bf2417fa0e350c5a0fdafb556b1388c8e51b489757a6f'),
    'test/948_2.png': ('QUEEN', '7425a819abe48f39485ee8b9914ebedbbae6aebf4b96561c2e29d9de6c88e320'),
    'test/957_9.png': ('Schemes', '74fc93d49069ab7f2edc33fda37aca48f2ebb8d66a088c0b9da819f40c378aa5'),
    'test/969_5.png': ('ALL', '0b40d88cec04c7c4e00e553061d61601733306a2f8e74e8787a0ab8af3c6c51c'),
    'test/971_6.png': ('12pm', 'bdb2fa431c5f707cea755e63a3da31a4c593313400dbd09001799fa6dbc3a6ad'),
    'test/977_31.png': ('HIERDIE', '3aedca960b1e043f618a12264a5d797711fd80516cf6a2d7ba6dd9595802f35a'),
    'test/984_3.png': ('Inc', '7b65630362000731606847fac0fc6c13081cff9bb116944ddb55164e470dcf00'),
    'test/994_5.png': ('TOP', 'd01a1ad48e9c6b9dbc871e45af139ba6212ec3b1aa26cb18251f886a184b2a27'),
}


def _git(checkout: Path) -> list[str]:
    if (checkout / ".git").exists():
        return ["git", "-C", str(checkout)]
    if (checkout / "HEAD").is_file() and (checkout / "objects").is_dir():
        return ["git", "--git-dir", str(checkout)]
    raise SystemExit(f"{checkout} is neither a git clone nor a git directory")


def read_blob(git: list[str], path: str) -> bytes:
    """The bytes of `path` at the pinned commit."""
    out = subprocess.run([*git, "show", f"{COMMIT}:{path}"], capture_output=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"cannot read {path} at {COMMIT}: {out.stderr.decode(errors='replace').strip()}")
    return out.stdout


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def select(annotation: bytes) -> list[tuple[str, str]]:
    """(source path, label) of the subset: words of >= MIN_CHARS characters, every (n/SUBSET_SIZE)-th one."""
    import scipy.io

    records = scipy.io.loadmat(io.BytesIO(annotation), squeeze_me=True, struct_as_record=False)["testCharBound"]
    words = [(str(r.ImgName), str(r.chars)) for r in records if len(str(r.chars)) >= MIN_CHARS]
    return [words[i * len(words) // SUBSET_SIZE] for i in range(SUBSET_SIZE)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkout", type=Path, help=f"a clone (or git directory) of {REPOSITORY}")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--print-manifest", action="store_true", help="print the manifest lines (to update this file)")
    args = ap.parse_args()
    git = _git(args.checkout)
    if subprocess.run([*git, "cat-file", "-e", f"{COMMIT}^{{commit}}"], capture_output=True).returncode != 0:
        raise SystemExit(f"commit {COMMIT} is not in {args.checkout}; fetch it first")
    annotation = read_blob(git, ANNOTATION)
    if sha256(annotation) != ANNOTATION_SHA256:
        raise SystemExit(f"{ANNOTATION}: checksum mismatch ({sha256(annotation)})")
    subset = select(annotation)
    if args.print_manifest:
        for path, label in subset:
            print(f"    {path!r}: ({label!r}, {sha256(read_blob(git, path))!r}),")
        return
    if [p for p, _ in subset] != list(MANIFEST) or any(MANIFEST[p][0] != lab for p, lab in subset):
        raise SystemExit("the selected subset differs from the recorded manifest")
    images = args.out / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for path, label in subset:
        data = read_blob(git, path)
        digest = sha256(data)
        if digest != MANIFEST[path][1]:
            raise SystemExit(f"{path}: checksum mismatch ({digest} != {MANIFEST[path][1]})")
        name = path.replace("/", "_")
        (images / name).write_bytes(data)
        rows.append(f"images/{name}\t{label}\t{digest}\t{path}")
    (args.out / "labels.tsv").write_text("file\tlabel\tsha256\tsource\n" + "\n".join(rows) + "\n", encoding="utf-8")
    print(f"wrote {len(rows)} word images and labels.tsv to {args.out} (from {REPOSITORY} at {COMMIT[:12]})",
          file=sys.stderr)


if __name__ == "__main__":
    main()
